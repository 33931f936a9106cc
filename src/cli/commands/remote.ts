/** `otto node trust`, `otto node install --systemd` and `otto cluster check`: remote nodes over SSH. */
import { existsSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import { loadConfig, type LoadedConfig } from '../../config/load.js';
import { isSshNode } from '../../config/nodes.js';
import type { NodeConfig } from '../../config/schema.js';
import { InfrastructureError, UsageError } from '../../errors.js';
import { Workspace, isProcessAlive } from '../../workspace.js';
import type { GlobalOptions } from '../options.js';
import { printJson, table } from '../format.js';

const say = (line = '') => process.stdout.write(`${line}\n`);

async function remoteNode(options: GlobalOptions, nodeId: string): Promise<{ loaded: LoadedConfig; node: NodeConfig; workspace: Workspace }> {
  const loaded = await loadConfig(options.config);
  const node = loaded.config.nodes.find((n) => n.id === nodeId);
  if (!node) throw new UsageError(`unknown node "${nodeId}" in ${options.config}`, `nodes: ${loaded.config.nodes.map((n) => n.id).join(', ')}`);
  if (!isSshNode(node)) {
    throw new UsageError(
      node.join ? `node ${nodeId} joins by itself (join: true): it is not reached over SSH` : `node ${nodeId} is local (host ${node.host ?? 'localhost'}${node.user ? '' : ', no user'}): it is not reached over SSH`,
      node.join ? 'on the node, run `otto node install --systemd` to install its agent' : 'a remote node has a non-local host and a user',
    );
  }
  return { loaded, node, workspace: new Workspace(loaded.path) };
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

export async function trust(
  options: GlobalOptions & { yes?: boolean; replace?: boolean; fingerprint?: string },
  nodeId: string,
): Promise<void> {
  const { node, workspace } = await remoteNode(options, nodeId);
  const { KnownHosts, fingerprint, keyTypeOf } = await import('../../remote/known-hosts.js');
  const { SshConnection } = await import('../../remote/ssh-connection.js');
  const { sshTarget } = await import('../../remote/manager.js');
  const target = sshTarget(node);
  const key = await SshConnection.scanHostKey(target);
  const known = KnownHosts.forWorkspace(workspace.dir);
  const print = fingerprint(key);
  const verdict = known.check(target.host, target.port, key);
  const where = `${target.host}:${target.port}`;
  if (verdict.status === 'trusted') {
    say(`host key of ${nodeId} (${where}) ${keyTypeOf(key)} ${print} is already trusted (${verdict.file}:${verdict.line})`);
    return;
  }
  if (verdict.status === 'revoked') {
    throw new InfrastructureError(`host key of ${nodeId} (${where}) ${print} is marked @revoked in ${verdict.file}:${verdict.line}; not trusting it`, `give ${nodeId} a new host key`);
  }
  if (verdict.status === 'changed' && !options.replace) {
    throw new InfrastructureError(
      `WARNING: HOST KEY OF ${nodeId} (${where}) HAS CHANGED: it presents ${print}, but ${verdict.file}:${verdict.line} has ${verdict.knownFingerprint}; not trusting it`,
      `if ${nodeId} was reinstalled, check the new fingerprint on the node, then run: otto node trust ${nodeId} --replace`,
    );
  }
  if (options.fingerprint && options.fingerprint !== print) {
    throw new InfrastructureError(`host key of ${nodeId} (${where}) is ${print}, not the expected ${options.fingerprint}; not trusting it`, 'check the fingerprint on the node: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub');
  }
  say(`${nodeId} (${where}) presents the ${keyTypeOf(key)} host key ${print}`);
  if (verdict.status === 'changed') say(`it REPLACES ${verdict.knownFingerprint} (${verdict.file}:${verdict.line})`);
  if (!options.yes && !options.fingerprint) {
    if (!process.stdin.isTTY) {
      throw new UsageError('no terminal to confirm the fingerprint', `check it on the node, then run: otto node trust ${nodeId} --yes (or --fingerprint ${print})`);
    }
    if (!(await confirm('trust it?'))) throw new UsageError('not trusted', undefined);
  }
  if (verdict.status === 'changed') {
    const removed = await known.replace(target.host, target.port, key);
    say(`replaced ${removed} old key(s) of ${nodeId} in ${known.trustFile}`);
  } else {
    await known.trust(target.host, target.port, key);
  }
  if (verdict.status === 'changed' && known.check(target.host, target.port, key).status !== 'trusted') {
    throw new InfrastructureError(`the old key of ${nodeId} is still in ${verdict.file}`, `remove it: ssh-keygen -R '${target.port === 22 ? target.host : `[${target.host}]:${target.port}`}' -f ${verdict.file}`);
  }
  say(`trusted ${nodeId}: added ${print} to ${known.trustFile}`);
}

export async function install(options: GlobalOptions & { systemd?: boolean; stateDir?: string }, nodeId: string): Promise<void> {
  if (!options.systemd) throw new UsageError('nothing to install: pass --systemd', `otto node install ${nodeId} --systemd`);
  // On a device that joined by itself there is no otto.yaml: its saved join says what to run.
  if (!existsSync(options.config)) {
    const [{ savedIdentity, stateDirFor }, { installJoinedUnit }] = await Promise.all([import('../../agent/join.js'), import('../install-joined.js')]);
    const joined = await savedIdentity(stateDirFor(options.stateDir, undefined));
    if (!joined || joined.node !== nodeId) {
      throw new UsageError(`this device has not joined as node ${nodeId}${joined ? ` (it is ${joined.node})` : ''}`, 'join first with the line `otto node join-command` printed, or run this on the control plane for a node reached over SSH');
    }
    const unitPath = await installJoinedUnit(joined);
    say(`installed ${unitPath} and enabled it: the agent of ${nodeId} now starts at boot`);
    return;
  }
  const { loaded, node, workspace } = await remoteNode(options, nodeId);
  const { config } = loaded;
  const [{ KnownHosts }, { SshConnection }, { sshTarget, agentSettingsFor }, { RemoteAgent, localAgentBundle }, { installSystemdUnit }, { remoteMqttUrl }, { Credentials }, { brokerCaFile, brokerTransport }] = await Promise.all([
    import('../../remote/known-hosts.js'),
    import('../../remote/ssh-connection.js'),
    import('../../remote/manager.js'),
    import('../../remote/remote-agent.js'),
    import('../../remote/systemd-unit.js'),
    import('../../remote/mqtt-address.js'),
    import('../../security/credentials.js'),
    import('../../config/transport.js'),
  ]);
  const mqttUrl = remoteMqttUrl(config);
  if (!mqttUrl) throw new UsageError(`no broker address for remote nodes`, 'set mqtt.advertise in otto.yaml');
  const conn = await SshConnection.connect(sshTarget(node), { knownHosts: KnownHosts.forWorkspace(workspace.dir), keepaliveIntervalMs: 0 });
  try {
    const agent = new RemoteAgent(conn, node.id, config.cluster.name, localAgentBundle());
    // Exactly what the control plane starts it with: the node's own credential, the cluster CA.
    const credentials = await new Credentials(workspace.credentialsPath).load();
    await credentials.ensure([node.id]);
    const caFile = brokerCaFile(config, workspace.tlsDir);
    if (brokerTransport(config).ownCa) {
      // The cluster's CA must exist before a unit that verifies the broker with it.
      const [{ ensureTlsMaterial }, { certificateNames }] = await Promise.all([import('../../security/tls.js'), import('../../control-plane/tls-setup.js')]);
      await ensureTlsMaterial(workspace.tlsDir, config.cluster.name, certificateNames(config));
    }
    const settings = agentSettingsFor(
      {
        cluster: config.cluster.name,
        mqttUrl,
        interval: config.metrics.interval,
        credentials: { [node.id]: { username: node.id, password: credentials.password(node.id)! } },
        ...(caFile && existsSync(caFile) ? { ca: readFileSync(caFile, 'utf8') } : {}),
      },
      node,
    );
    const result = await installSystemdUnit(agent, settings, { unitDir: process.env.OTTO_SYSTEMD_UNIT_DIR });
    say(`installed ${result.unitPath} on ${node.id} and enabled it: the agent now starts at boot`);
  } finally {
    conn.close();
  }
}

export async function check(options: GlobalOptions & { json?: boolean }): Promise<void> {
  const loaded = await loadConfig(options.config);
  const workspace = new Workspace(loaded.path);
  const { runClusterCheck, CHECKS, CHECK_TITLES } = await import('../../remote/check.js');
  const running = await workspace.readControlPlane();
  const report = await runClusterCheck({
    config: loaded.config,
    workspaceDir: workspace.dir,
    controlPlaneRunning: Boolean(running && isProcessAlive(running.pid)),
  });
  const failures = report.nodes.flatMap((n) => CHECKS.filter((c) => n.checks[c].status === 'fail').map((c) => ({ node: n.node, check: c, result: n.checks[c] })));
  if (options.json) {
    printJson(report);
  } else {
    say(table(['NODE', ...CHECKS.map((c) => CHECK_TITLES[c])], report.nodes.map((n) => [n.node, ...CHECKS.map((c) => n.checks[c].value)])));
    if (failures.length) {
      say();
      for (const f of failures) {
        say(`${f.node} ${CHECK_TITLES[f.check]}: ${f.result.error}`);
        if (f.result.hint) say(`  hint: ${f.result.hint}`);
      }
    } else {
      say();
      say(`all checks passed on ${report.nodes.length} node(s)`);
    }
  }
  if (failures.length) {
    const nodes = [...new Set(failures.map((f) => f.node))];
    throw new InfrastructureError(
      `cluster check: ${failures.length} check(s) failed on ${nodes.length} node(s): ${failures.map((f) => `${f.node} ${CHECK_TITLES[f.check]}`).join(', ')}`,
      options.json ? undefined : 'see the hints above',
    );
  }
}
