/**
 * The two small programs Otto copies to a node next to the agent bundle. What runs on a node is in files
 * uploaded over SFTP and run as `sh FILE ARGS` / `node FILE`, never code inlined in an ssh command line
 * (seed 002's lesson: no quoting of programs inside strings).
 *
 * - otto-node.sh: facts about the node, and the agent's life cycle (status, stop, start by start script),
 *   through systemd when the node has the unit installed.
 * - otto-probe.mjs: what needs a real program: Docker reachable, the MQTT broker reachable from the node
 *   (an MQTT CONNECT, or a nonce from `otto cluster check`'s stand-in listener), the node's clock; and
 *   removing the cluster's containers through the Docker engine's socket (`otto cluster stop --down`),
 *   so that the node needs no docker CLI. Node.js builtins only; reads its request as JSON on standard
 *   input (so no secret is on a command line).
 */
import { createHash } from 'node:crypto';

export const NODE_HELPER_SH = String.raw`#!/bin/sh
# Otto's node helper (uploaded by Otto; safe to delete). Usage:
#   otto-node.sh facts
#   otto-node.sh now                      (milliseconds since the epoch)
#   otto-node.sh status PIDFILE MATCH
#   otto-node.sh stop PIDFILE UNIT TIMEOUT_SECONDS MATCH
#   otto-node.sh start STARTSCRIPT PIDFILE UNIT MATCH
# MATCH is a piece of the agent's command line (" agent --node ID --cluster NAME "): a pid file whose
# process is something else (the pid was reused, or another cluster's agent) is ignored.
set -u

find_node() {
  for candidate in "$(command -v node 2>/dev/null)" /usr/local/bin/node /usr/bin/node /opt/node/bin/node "$HOME/.local/bin/node" "$HOME/.volta/bin/node"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then echo "$candidate"; return 0; fi
  done
  last=
  for candidate in "$HOME"/.nvm/versions/node/*/bin/node; do
    if [ -x "$candidate" ]; then last=$candidate; fi
  done
  if [ -n "$last" ]; then echo "$last"; return 0; fi
  return 1
}

# The pid in PIDFILE (arg 1) if that process is alive and is this node's Otto agent (arg 2: MATCH).
live_pid() {
  [ -f "$1" ] || return 1
  pid=$(cat "$1" 2>/dev/null)
  case "$pid" in ''|*[!0-9]*) return 1 ;; esac
  kill -0 "$pid" 2>/dev/null || return 1
  if [ -r "/proc/$pid/cmdline" ]; then
    cmdline=$(tr '\000' ' ' < "/proc/$pid/cmdline")
    case "$cmdline" in *otto-agent*) ;; *) return 1 ;; esac
    case "$cmdline" in *"$2"*) ;; *) return 1 ;; esac
  fi
  echo "$pid"
}

systemd_manages() {
  unit=$1
  [ -n "$unit" ] || return 1
  [ -d /run/systemd/system ] || return 1
  command -v systemctl >/dev/null 2>&1 || return 1
  systemctl is-enabled "$unit" >/dev/null 2>&1
}

if [ $# -eq 0 ]; then cmd=; else cmd=$1; shift; fi
case "$cmd" in
facts)
  echo "arch=$(uname -m)"
  echo "os=$(uname -s)"
  echo "kernel=$(uname -r)"
  echo "user=$(id -un)"
  echo "uid=$(id -u)"
  echo "home=$HOME"
  node_bin=$(find_node || true)
  echo "node=$node_bin"
  if [ -n "$node_bin" ]; then echo "node_version=$("$node_bin" --version 2>/dev/null)"; fi
  echo "docker_cli=$(command -v docker 2>/dev/null || true)"
  echo "systemctl=$(command -v systemctl 2>/dev/null || true)"
  if [ -d /run/systemd/system ]; then echo "systemd=running"; else echo "systemd=absent"; fi
  echo "setsid=$(command -v setsid 2>/dev/null || true)"
  ;;
now)
  t=$(date +%s%3N 2>/dev/null || true)
  case "$t" in ''|*[!0-9]*) t=$(( $(date +%s) * 1000 )) ;; esac
  echo "$t"
  ;;
status)
  if pid=$(live_pid "$1" "$2"); then
    version=$(cat "$1.version" 2>/dev/null || true)
    echo "running $pid $version"
  else
    echo "stopped"
  fi
  ;;
stop)
  pidfile=$1 unit=$2 timeout=$3 match=$4
  pid=$(live_pid "$pidfile" "$match" || true)
  if systemd_manages "$unit"; then systemctl stop "$unit" >/dev/null 2>&1 || true; fi
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    waited=0
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt "$((timeout * 10))" ]; do sleep 0.1; waited=$((waited + 1)); done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; sleep 0.2; fi
    if kill -0 "$pid" 2>/dev/null; then echo "alive $pid"; exit 1; fi
    rm -f "$pidfile"
    echo "stopped $pid"
  else
    rm -f "$pidfile"
    echo "not-running"
  fi
  ;;
start)
  script=$1 pidfile=$2 unit=$3 match=$4
  if systemd_manages "$unit"; then
    systemctl restart "$unit" || { echo "systemctl restart $unit failed" >&2; exit 1; }
  else
    /bin/sh "$script" || exit 1
  fi
  # Give it a moment: an agent that cannot start at all (bad runtime, bad flags) exits at once.
  sleep 1
  if pid=$(live_pid "$pidfile" "$match"); then echo "started $pid"; else echo "exited"; exit 3; fi
  ;;
*)
  echo "usage: otto-node.sh facts|now|status|stop|start ..." >&2
  exit 64
  ;;
esac
`;

export const PROBE_MJS = String.raw`// Otto's node probe (uploaded by Otto; safe to delete). Reads a JSON request on standard input:
// { "docker": "unix:///var/run/docker.sock", "broker": { "url": "mqtt://h:1883", "username": "", "password": "",
//   "nonce": "..." }, "remove": { "docker": "unix:///var/run/docker.sock", "labels": ["otto.cluster=c", "otto.node=n"] },
//   "timeoutMs": 5000 } and prints one JSON line of results. "remove" stops every container that has all of
// the labels (at least one is required) the way docker stop does (its stop signal, then SIGKILL after its
// own grace period), then removes it; a container that would not stop is left as it is and reported.
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';

const started = Date.now();
const input = await new Promise((resolve) => {
  let text = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk) => (text += chunk));
  process.stdin.on('end', () => resolve(text ? JSON.parse(text) : {}));
});
const timeoutMs = input.timeoutMs ?? 5000;

function describe(err) {
  return err && err.code ? err.code : String(err && err.message ? err.message : err);
}

// Where the Docker engine at url listens, as http.request options; undefined for a TLS engine (https).
function dockerTarget(url) {
  if (url.startsWith('unix://')) return { socketPath: url.slice('unix://'.length) };
  const parsed = new URL(url.replace(/^tcp:/, 'http:'));
  if (parsed.protocol === 'https:') return undefined;
  return { host: parsed.hostname, port: Number(parsed.port || 2375) };
}

// One Docker Engine API request; resolves with the status and the body, rejects on a network error.
function dockerRequest(target, method, path, requestTimeoutMs = timeoutMs) {
  return new Promise((resolve, reject) => {
    const req = http.request({ ...target, path, method, timeout: requestTimeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end();
  });
}

function dockerError(res) {
  try {
    const message = JSON.parse(res.body).message;
    if (message) return 'HTTP ' + res.status + ': ' + message;
  } catch {}
  return 'HTTP ' + res.status;
}

async function probeDocker(url) {
  try {
    const target = dockerTarget(url);
    if (!target) return { ok: true, skipped: 'TLS engine: not probed' };
    const res = await dockerRequest(target, 'GET', '/version');
    if (res.status !== 200) return { ok: false, error: 'HTTP ' + res.status };
    try {
      const v = JSON.parse(res.body);
      return { ok: true, version: v.Version, arch: v.Arch };
    } catch {
      return { ok: false, error: 'not a Docker engine' };
    }
  } catch (err) {
    return { ok: false, error: describe(err) };
  }
}

async function removeContainers(request) {
  const labels = Array.isArray(request.labels) ? request.labels : [];
  if (labels.length === 0 || labels.some((l) => typeof l !== 'string' || l.indexOf('=') < 1)) {
    return { ok: false, removed: 0, error: 'no labels to select the containers by' };
  }
  let target;
  try {
    target = dockerTarget(String(request.docker));
  } catch {
    return { ok: false, removed: 0, error: 'invalid Docker URL ' + request.docker };
  }
  if (!target) return { ok: false, removed: 0, error: 'a TLS engine (https) cannot be reached by the probe: remove the containers by hand' };
  const wanted = labels.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]);
  let removed = 0;
  try {
    const filters = encodeURIComponent(JSON.stringify({ label: labels }));
    const list = await dockerRequest(target, 'GET', '/containers/json?all=1&filters=' + filters);
    if (list.status !== 200) return { ok: false, removed, error: 'list containers: ' + dockerError(list) };
    // The engine filtered by the labels already; checked again here, since this stops and removes.
    const ours = JSON.parse(list.body).filter((c) => wanted.every(([key, value]) => c.Labels && c.Labels[key] === value));
    const errors = [];
    await Promise.all(
      ours.map(async (c) => {
        try {
          const path = '/containers/' + encodeURIComponent(c.Id);
          // Graceful: the container's own stop signal and grace (StopTimeout, else Docker's 10 s).
          const info = await dockerRequest(target, 'GET', path + '/json');
          const graceS = info.status === 200 ? (JSON.parse(info.body).Config.StopTimeout ?? 10) : 10;
          const stop = await dockerRequest(target, 'POST', path + '/stop?t=' + graceS, graceS * 1000 + 15000);
          if (stop.status !== 204 && stop.status !== 304 && stop.status !== 404) {
            errors.push('stop ' + c.Id.slice(0, 12) + ': ' + dockerError(stop));
            return;
          }
          const res = await dockerRequest(target, 'DELETE', path + '?force=1');
          // 404: gone meanwhile.
          if (res.status === 204 || res.status === 404) removed++;
          else errors.push('remove ' + c.Id.slice(0, 12) + ': ' + dockerError(res));
        } catch (err) {
          errors.push('remove ' + c.Id.slice(0, 12) + ': ' + (err && err.message ? err.message : String(err)));
        }
      }),
    );
    return errors.length ? { ok: false, removed, error: errors.join('; ') } : { ok: true, removed };
  } catch (err) {
    return { ok: false, removed, error: 'list containers: ' + (err && err.message ? err.message : String(err)) };
  }
}

function encodeString(text) {
  const bytes = Buffer.from(text, 'utf8');
  const length = Buffer.alloc(2);
  length.writeUInt16BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

function remainingLength(n) {
  const out = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 128;
    out.push(byte);
  } while (n > 0);
  return Buffer.from(out);
}

function connectPacket(username, password, clientId) {
  let flags = 0x02;
  const payload = [encodeString(clientId || 'otto-probe-' + Math.random().toString(16).slice(2, 10))];
  if (username) {
    flags |= 0x80;
    payload.push(encodeString(username));
    if (password !== undefined && password !== null) {
      flags |= 0x40;
      payload.push(encodeString(password));
    }
  }
  const variable = Buffer.concat([encodeString('MQTT'), Buffer.from([4, flags, 0, 10])]);
  const body = Buffer.concat([variable, ...payload]);
  return Buffer.concat([Buffer.from([0x10]), remainingLength(body.length), body]);
}

const connackErrors = { 1: 'unacceptable protocol version', 2: 'client id rejected', 3: 'server unavailable', 4: 'bad user name or password', 5: 'not authorized' };

function probeBroker(broker) {
  return new Promise((resolve) => {
    let parsed;
    try {
      parsed = new URL(broker.url);
    } catch {
      return resolve({ ok: false, error: 'invalid URL ' + broker.url });
    }
    const host = parsed.hostname.replace(/^\[|\]$/g, '');
    // mqtts: verify the broker with the cluster's CA, as the agent will (the stand-in answers plain TCP).
    const secure = parsed.protocol === 'mqtts:' && !broker.nonce;
    const port = Number(parsed.port || (secure ? 8883 : 1883));
    const socket = secure ? tls.connect({ host, port, ca: broker.ca, servername: net.isIP(host) ? undefined : host }) : net.connect({ host, port });
    let received = Buffer.alloc(0);
    let done = false;
    const finish = (result) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish({ ok: false, error: 'timed out' }), timeoutMs);
    socket.on(secure ? 'secureConnect' : 'connect', () => {
      if (!broker.nonce) socket.write(connectPacket(broker.username, broker.password, broker.clientId));
    });
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      if (broker.nonce) {
        const line = received.toString('utf8');
        if (line.includes('\n')) {
          finish(line.trim() === 'otto-check ' + broker.nonce ? { ok: true } : { ok: false, error: 'something else answers at ' + host + ':' + port });
        }
        return;
      }
      if (received.length >= 4) {
        if (received[0] !== 0x20) return finish({ ok: false, error: 'not an MQTT broker' });
        const code = received[3];
        if (code === 0) socket.write(Buffer.from([0xe0, 0]));
        finish(code === 0 ? { ok: true } : { ok: false, error: 'broker refused the connection: ' + (connackErrors[code] || 'code ' + code) });
      }
    });
    socket.on('error', (err) => finish({ ok: false, error: describe(err) }));
    socket.on('close', () => finish({ ok: false, error: 'connection closed' }));
  });
}

const result = { now: started, node: process.version, arch: process.arch };
const jobs = [];
if (input.docker) jobs.push(probeDocker(input.docker).then((r) => (result.docker = r)));
if (input.broker) jobs.push(probeBroker(input.broker).then((r) => (result.broker = r)));
if (input.remove) jobs.push(removeContainers(input.remove).then((r) => (result.remove = r)));
await Promise.all(jobs);
process.stdout.write(JSON.stringify(result) + '\n');
`;

const short = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 10);

/** File names carry a hash of the content: a changed script gets a new name and is uploaded again. */
export const NODE_HELPER_NAME = `otto-node-${short(NODE_HELPER_SH)}.sh`;
export const PROBE_NAME = `otto-probe-${short(PROBE_MJS)}.mjs`;

export interface ProbeRequest {
  docker?: string;
  /** clientId: a node may connect only with its own (broker-auth.ts clientIdAllowed). */
  broker?: { url: string; username?: string; password?: string; clientId?: string; nonce?: string; ca?: string };
  /** Force-removes every container that has all of these `key=value` labels (at least one). */
  remove?: { docker: string; labels: string[] };
  /** Per network request (Docker, broker). */
  timeoutMs?: number;
}

export interface ProbeResult {
  now: number;
  node: string;
  arch: string;
  docker?: { ok: boolean; version?: string; arch?: string; error?: string; skipped?: string };
  broker?: { ok: boolean; error?: string };
  remove?: { ok: boolean; removed?: number; error?: string };
}
