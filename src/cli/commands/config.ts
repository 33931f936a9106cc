/** `otto config validate|schema|mosquitto`. */
import { mkdir } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { loadConfig } from '../../config/load.js';
import { ConfigSource } from '../../config/source.js';
import { configJsonSchema } from '../../config/schema.js';
import { ConfigError } from '../../errors.js';
import type { GlobalOptions } from '../options.js';

const say = (line = '') => process.stdout.write(`${line}\n`);

export async function validate(options: GlobalOptions): Promise<void> {
  const { config } = await loadConfig(options.config);
  const { transportWarnings } = await import('../../config/transport.js');
  for (const warning of transportWarnings(config)) process.stderr.write(`warning: ${warning}\n`);
  say(`${options.config} is valid: cluster "${config.cluster.name}", ${config.nodes.length} node(s), ${config.services.length} service(s)`);
}

export async function schema(): Promise<void> {
  say(JSON.stringify(configJsonSchema(), null, 2));
}

/**
 * Writes an external Mosquitto's configuration, password file and ACL file, which enforce the embedded
 * broker's rules, for the cluster of otto.yaml (default folder .otto/mosquitto). Creates the API token and
 * the nodes' credentials it needs, as `cluster init` does. Allowed while otto.yaml still uses the embedded
 * broker: the user may be about to switch.
 */
export async function mosquitto(options: GlobalOptions & { out?: string }): Promise<void> {
  const { Workspace, writeAtomic } = await import('../../workspace.js');
  const { runningEnv } = await import('../running-config.js');
  const { Credentials } = await import('../../security/credentials.js');
  // The embedded broker's limit, so both brokers take the same packets.
  const [{ MAX_MQTT_PACKET_BYTES }, { brokerTransport }] = await Promise.all([import('../../protocol/limits.js'), import('../../config/transport.js')]);
  const { MOSQUITTO_FILES, mosquittoUsernameProblem, renderMosquittoFiles } = await import('../../security/mosquitto.js');
  const { controlPlaneCredentials, poolUsername } = await import('../../protocol/broker-auth.js');

  const workspace = new Workspace(options.config);
  const loaded = await loadConfig(options.config, await runningEnv(workspace));
  const { config } = loaded;
  const problems = config.mqtt.readers.flatMap((reader, index) => {
    const problem = mosquittoUsernameProblem(reader.username);
    return problem ? [{ path: ['mqtt', 'readers', index, 'username'], message: `${JSON.stringify(reader.username)}: ${problem}` }] : [];
  });
  if (problems.length > 0) {
    const source = new ConfigSource(loaded.text, options.config);
    throw new ConfigError(problems.map((p) => source.render(p).text), 'rename the reader in otto.yaml (the embedded broker takes the name, Mosquitto cannot)');
  }
  if (!workspace.isInitialized()) await workspace.initialize(loaded.text, loaded.hash);
  const credentials = await new Credentials(workspace.credentialsPath).load();
  const newCredentials = await credentials.ensure(config.nodes.map((n) => n.id));
  await credentials.ensurePools(config.node_pools.map((pool) => pool.name));

  const dir = options.out ? resolve(options.out) : join(workspace.dir, 'mosquitto');
  await mkdir(join(dir, MOSQUITTO_FILES.data), { recursive: true, mode: 0o700 });
  const runAs = userInfo().username;
  const files = renderMosquittoFiles({
    dir,
    host: config.mqtt.host,
    port: brokerTransport(config).port,
    // Your own certificate (mqtt.tls: {ca, cert, key}) makes the listener speak TLS.
    ...(typeof config.mqtt.tls === 'object' && config.mqtt.tls.cert && config.mqtt.tls.key
      ? { tls: { cafile: resolve(config.mqtt.tls.ca), certfile: resolve(config.mqtt.tls.cert), keyfile: resolve(config.mqtt.tls.key) } }
      : {}),
    maxPacketBytes: MAX_MQTT_PACKET_BYTES,
    users: [
      controlPlaneCredentials(await workspace.token()),
      ...config.nodes.map((n) => ({ username: n.id, password: credentials.password(n.id)! })),
      ...Object.keys(credentials.joinedNodes()).map((id) => ({ username: id, password: credentials.password(id)! })),
      ...config.node_pools.map((pool) => ({ username: poolUsername(pool.name), password: credentials.poolSecret(pool.name)! })),
      ...config.mqtt.readers,
    ],
    readers: config.mqtt.readers.map((r) => r.username),
    pools: config.node_pools.map((pool) => pool.name),
    runAs,
    clusterName: config.cluster.name,
  });
  await writeAtomic(join(dir, MOSQUITTO_FILES.passwords), files.passwords, 0o600);
  await writeAtomic(join(dir, MOSQUITTO_FILES.acl), files.acl, 0o600);
  await writeAtomic(join(dir, MOSQUITTO_FILES.conf), files.conf);

  const { host, embedded, readers } = config.mqtt;
  const { port } = brokerTransport(config);
  say(`wrote ${dir}/ for cluster "${config.cluster.name}":`);
  say(`  ${MOSQUITTO_FILES.conf}  listener ${host}:${port}, no anonymous clients, persistence in ${MOSQUITTO_FILES.data}/, packets up to ${MAX_MQTT_PACKET_BYTES} bytes`);
  say(`  ${MOSQUITTO_FILES.passwords}          otto-control-plane, ${config.nodes.length} node(s), ${readers.length} reader(s) (0600)`);
  say(`  ${MOSQUITTO_FILES.acl}             the embedded broker's rules (0600)`);
  if (newCredentials.length > 0) say(`new broker credentials for ${newCredentials.join(', ')} (${workspace.credentialsPath})`);
  say(`run it: mosquitto -c ${join(dir, MOSQUITTO_FILES.conf)}`);
  if (embedded) say(`then set mqtt.embedded: false in ${options.config}: it still uses the embedded broker`);
  else say(`${options.config} uses an external broker (mqtt.embedded: false) at ${host}:${port}`);
  say('after a node is added or a credential rotated: run `otto config mosquitto` again and send mosquitto a SIGHUP');
  if (runAs === 'root') say('note: mosquitto will run as root, the owner of these files; for another user, chown the folder to it and change `user` in mosquitto.conf');
}
