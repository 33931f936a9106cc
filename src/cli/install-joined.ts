/**
 * `otto node install NODE --systemd` on a device that joined by itself: a systemd unit that starts its
 * agent at boot, rejoining as saved (no token). Run on the device, as the user the agent runs as (root, or
 * with sudo for the unit file). The unit runs the one-file agent this Otto ships, as SSH nodes do, not the
 * whole CLI: the same program and the same memory on every node.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { homedir, userInfo } from 'node:os';
import { AGENT_NODE_FLAGS, localAgentBundle } from '../agent/bundle.js';
import type { JoinedIdentity } from '../agent/join.js';
import { InfrastructureError } from '../errors.js';
import { SYSTEM_UNIT_DIR, joinedAgentUnit } from '../remote/systemd-unit.js';

export async function installJoinedUnit(joined: JoinedIdentity, unitDir = process.env.OTTO_SYSTEMD_UNIT_DIR ?? SYSTEM_UNIT_DIR): Promise<string> {
  const agent = localAgentBundle().path;
  const name = `otto-agent-${joined.cluster}-${joined.node}.service`;
  const unit = joinedAgentUnit({
    nodeId: joined.node,
    cluster: joined.cluster,
    user: userInfo().username,
    home: homedir(),
    execStart: [process.execPath, ...AGENT_NODE_FLAGS, agent, 'agent', '--join', '--state-dir', joined.stateDir],
  });
  const unitPath = `${unitDir}/${name}`;
  await mkdir(unitDir, { recursive: true });
  await writeFile(unitPath, unit, { mode: 0o644 });
  const systemctl = ['/usr/bin/systemctl', '/bin/systemctl'].find((path) => existsSync(path));
  if (!systemctl || !existsSync('/run/systemd/system')) {
    const why = systemctl ? 'systemd is not running here (no /run/systemd/system)' : 'this machine has no systemctl';
    throw new InfrastructureError(
      `${joined.node}: wrote ${unitPath}, but ${why}: the agent will not be started at boot`,
      `on a device booted with systemd, run: systemctl daemon-reload && systemctl enable --now ${name}`,
    );
  }
  for (const args of [['daemon-reload'], ['enable', '--now', name]]) execFileSync(systemctl, args, { stdio: 'inherit' });
  return unitPath;
}
