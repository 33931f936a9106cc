/**
 * Every spoof is refused on both brokers Otto runs with: its embedded aedes, and a real Mosquitto started
 * from the files `otto config mosquitto` wrote (the cluster then has `mqtt.embedded: false`). Each cluster has
 * two real agents (nodes a and b) running a service. Every refusal has its positive twin: the right identity
 * doing the same thing gets through, so the refusal is shown to be the identity check and nothing else.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { connect as connectTcp, type Socket } from 'node:net';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_MQTT_PACKET_BYTES } from '../src/protocol/limits.js';
import { clusterStatusSchema, type ClusterStatus } from '../src/http/schemas.js';
import { ownClientId } from '../src/protocol/broker-auth.js';
import { topics } from '../src/protocol/topics.js';
import { brokerLogin, containersOf, freePort, nodeLogin, waitFor } from './support/cli.js';
import { createCluster, type TestCluster } from './support/cluster.js';
import { startMosquitto, type Mosquitto } from './support/mosquitto.js';

const READER = { username: 'viewer', password: 'viewer-password' };
type Login = { username: string; password: string };

/**
 * How the two brokers refuse, where they differ. Mosquitto 2.0's default ACL grants every subscription and
 * checks read access per message instead, drops a refused publish without closing the connection, and has no
 * rule for where a retained message may be kept; its `pattern` lines give every username, readers included,
 * write access under otto/nodes/<its own name>/.
 */
const BROKERS = [
  {
    name: 'the embedded broker',
    external: false,
    refusedSubscriptionIsGranted: false,
    refusedPublishClosesConnection: true,
    keepsRetainedOnOwnMetrics: false,
    readerMayPublishUnderItsName: false,
  },
  {
    name: 'Mosquitto configured by `otto config mosquitto`',
    external: true,
    refusedSubscriptionIsGranted: true,
    refusedPublishClosesConnection: false,
    keepsRetainedOnOwnMetrics: true,
    readerMayPublishUnderItsName: false,
  },
] as const;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(BROKERS)('spoofs on $name', (broker) => {
  let c: TestCluster;
  let mosquitto: Mosquitto | undefined;
  let observer: Watcher;
  let containersAtStart: string[];
  const clients: MqttClient[] = [];

  const url = () => `mqtt://127.0.0.1:${c.mqttPort}`;
  const cp = (): Login => brokerLogin(c.dir);
  const node = (id: string): Login => nodeLogin(c.dir, id);
  const as = async (login: Login | undefined, extra: IClientOptions = {}) => {
    const suffix = `spoof-${Math.random().toString(36).slice(2, 10)}`;
    // A node may open a second session only under its own client id (derived from its credential).
    const isNode = login && ['a', 'b'].includes(login.username) && login.password === node(login.username).password;
    const clientId = isNode ? `${ownClientId('agent', c.name, login.username, login.password)}-${suffix}` : suffix;
    const client = await mqtt.connectAsync(url(), { ...login, clientId, reconnectPeriod: 0, ...extra });
    clients.push(client);
    return client;
  };
  /** A client that sends spoofs again and again: the embedded broker closes it at each, so it reconnects. */
  const spoofer = (login: Login) => as(login, { reconnectPeriod: 100 });
  /** The QoS a subscription was granted, or 128 (refused). */
  const grant = (client: MqttClient, filter: string) =>
    client.subscribeAsync(filter, { qos: 1 }).then(
      (granted) => granted[0]!.qos,
      (err: { packet?: { granted?: number[] } }) => err.packet?.granted?.[0] ?? -1,
    );
  const watch = async (login: Login, filters: string[]) => {
    const client = await as(login);
    return new Watcher(client, await client.subscribeAsync(filters, { qos: 1 }));
  };
  const api = async (): Promise<ClusterStatus> => {
    const response = await fetch(`http://127.0.0.1:${c.httpPort}/api/v1/status`, { headers: { authorization: `Bearer ${cp().password}` } });
    return clusterStatusSchema.parse(await response.json());
  };
  const nodeView = (status: ClusterStatus, id: string) => status.nodes.find((n) => n.id === id)!;
  const ledgerText = () => readFileSync(join(c.dir, '.otto', 'ledger.json'), 'utf8');
  /** Sends `spoof` every 200 ms for `ms` while checking every status the API gives in that time. */
  const spoofWhileChecking = async (spoof: () => void, check: (status: ClusterStatus) => void, ms = 2_500) => {
    const deadline = Date.now() + ms;
    const sender = setInterval(spoof, 200);
    spoof();
    try {
      while (Date.now() < deadline) {
        check(await api());
        await sleep(150);
      }
    } finally {
      clearInterval(sender);
    }
  };
  /** A publish the broker refuses: the embedded one closes the connection, Mosquitto drops the message. */
  const publishRefused = async (client: MqttClient, topic: string, payload: string | Buffer, options: { retain?: boolean } = {}) => {
    const closed = new Promise<boolean>((resolve) => client.once('close', () => resolve(true)));
    client.publish(topic, payload, { qos: 0, retain: options.retain ?? false });
    const result = await Promise.race([closed, sleep(1_500).then(() => false)]);
    expect(result, `connection closed after a refused publish on ${topic}`).toBe(broker.refusedPublishClosesConnection);
  };

  beforeAll(async () => {
    const port = await freePort();
    c = await createCluster('spoof', '', broker.external ? { externalBroker: { port } } : {});
    writeFileSync(
      c.configPath,
      `cluster:
  name: ${c.name}
mqtt:
  host: 127.0.0.1
  port: ${c.mqttPort}
  embedded: ${!broker.external}
  readers: [{ username: ${READER.username}, password: ${READER.password} }]
http:
  port: ${c.httpPort}
metrics:
  interval: 1s
control:
  interval: 1s
  lost_after: 4s
nodes:
  - { id: a, host: localhost }
  - { id: b, host: localhost }
services:
  - name: web
    image: otto-test/busybox
    command: sleep 3600
    replicas: 2
`,
    );
    if (broker.external) {
      const written = await c.run('config', 'mosquitto');
      expect(written.code, written.stderr).toBe(0);
      mosquitto = await startMosquitto({ port: c.mqttPort, configFile: join(c.dir, '.otto', 'mosquitto', 'mosquitto.conf') });
    }
    const started = await c.run('cluster', 'start', '--detach');
    expect(started.code, started.stderr).toBe(0);
    await waitFor('web running on a and b', async () => {
      const status = await api();
      return status.services[0]!.running === 2 && status.nodes.every((n) => n.state === 'online') && status.services[0]!.nodes.length === 2;
    });
    containersAtStart = (await containersOf(c.name)).map((x) => x.Id).sort();
    observer = await watch(cp(), ['otto/#']);
  });

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.endAsync(true).catch(() => undefined)));
    await c.destroy();
    await mosquitto?.stop();
  });

  it('refuses anonymous clients and wrong passwords at connect, and takes every identity with its own', async () => {
    await expect(as(undefined)).rejects.toThrow(/Not authorized/i);
    await expect(as({ username: 'a', password: node('b').password })).rejects.toThrow(/Not authorized|Bad username or password/i);
    await expect(as({ username: 'otto-control-plane', password: node('a').password })).rejects.toThrow(/Not authorized|Bad username or password/i);
    for (const login of [cp(), node('a'), node('b'), READER]) expect((await as(login)).connected).toBe(true);
  });

  it('answers an anonymous CONNECT followed at once by a SUBSCRIBE to the desired states with a refusal and nothing else', async () => {
    const reply = await rawSession(c.mqttPort, [connectPacket({ clientId: 'anonymous-spy' }), subscribePacket('otto/nodes/+/desired')]);
    expect(reply.closed).toBe(true);
    expect([...reply.bytes.subarray(0, 4)]).toEqual([0x20, 0x02, 0x00, 0x05]); // CONNACK: not authorized
    expect(reply.bytes.length).toBe(4); // no SUBACK, no retained desired state
  });

  it('keeps a node online when another node (or an anonymous client) says it is offline, and removes no container', async () => {
    await expect(as(undefined)).rejects.toThrow(/Not authorized/i);
    const b = await as(node('b'));
    const offline = JSON.stringify({ node_id: 'a', state: 'offline', timestamp: new Date().toISOString(), reason: 'spoofed' });
    await publishRefused(b, topics.status('a'), offline, { retain: true });
    const b2 = await spoofer(node('b'));
    await spoofWhileChecking(
      () => b2.publish(topics.status('a'), offline, { retain: true }),
      (status) => expect(nodeView(status, 'a').state).toBe('online'),
    );
    expect(observer.on(topics.status('a')).filter((m) => m.payload.includes('spoofed'))).toEqual([]);
    // A new subscriber gets the node's own status, not the spoof.
    const retained = await watch(cp(), [topics.status('a')]);
    const [kept] = await retained.next(topics.status('a'));
    expect(JSON.parse(kept!.payload).state).toBe('online');
  });

  it("shows no other node's fake metrics or fake container, while a node's own metrics show", async () => {
    const b = await as(node('b'));
    const fakeCpu = { node_id: 'a', timestamp: '', cpu_percent: 99.9, memory_percent: 1, memory_used_mb: 1, memory_total_mb: 1, disk_percent: 1, disk_used_gb: 1, disk_total_gb: 1, network_bytes_sent: 0, network_bytes_recv: 0 };
    const fakeContainer = (nodeId: string, id: string) => ({
      node_id: nodeId,
      timestamp: new Date().toISOString(),
      containers: [{ container_id: id, container_name: id, cpu_percent: 1, memory_percent: 1, memory_usage_mb: 1, memory_limit_mb: 1, network_rx_bytes: 0, network_tx_bytes: 0, block_read_bytes: 0, block_write_bytes: 0 }],
    });
    await publishRefused(b, topics.nodeMetrics('a'), JSON.stringify({ ...fakeCpu, timestamp: new Date().toISOString() }));
    const b2 = await spoofer(node('b'));
    const b3 = await as(node('b'));
    const spoof = () => {
      const now = new Date().toISOString();
      b2.publish(topics.nodeMetrics('a'), JSON.stringify({ ...fakeCpu, timestamp: now }));
      b2.publish(topics.containerMetrics('a'), JSON.stringify(fakeContainer('a', 'spoofed-by-b')));
      // Under its own topic, in a's name: the broker takes it, the control plane does not.
      b3.publish(topics.nodeMetrics('b'), JSON.stringify({ ...fakeCpu, timestamp: now }));
    };
    const invalidBefore = (await api()).counters.invalid_messages;
    await spoofWhileChecking(spoof, (status) => {
      expect(status.nodes.map((n) => n.metrics?.cpu_percent)).not.toContain(99.9);
      expect(status.nodes.flatMap((n) => n.containers.map((x) => x.container_id))).not.toContain('spoofed-by-b');
    });
    expect((await api()).counters.invalid_messages).toBeGreaterThan(invalidBefore);
    expect(observer.on(topics.nodeMetrics('a')).some((m) => m.payload.includes('99.9'))).toBe(false);
    expect(observer.on(topics.containerMetrics('a')).some((m) => m.payload.includes('spoofed-by-b'))).toBe(false);
    const cli = clusterStatusSchema.parse(JSON.parse((await c.run('cluster', 'status', '--json')).stdout));
    expect(JSON.stringify(cli)).not.toMatch(/spoofed-by-b|99\.9\b/);

    // The same messages from node a itself are taken: the refusal above was the identity check.
    const a = await as(node('a'));
    await waitFor(
      "a's own container metrics shown",
      async () => {
        a.publish(topics.containerMetrics('a'), JSON.stringify(fakeContainer('a', 'reported-by-a')));
        return nodeView(await api(), 'a').containers.some((x) => x.container_id === 'reported-by-a');
      },
      10_000,
      100,
    );
  });

  it("shows no other node's fake state: the fake container is in neither `cluster status` nor ledger.json", async () => {
    const [current] = await (await watch(cp(), [topics.state('a')])).next(topics.state('a'));
    const real = JSON.parse(current!.payload);
    const withFake = (id: string) =>
      JSON.stringify({
        ...real,
        timestamp: new Date().toISOString(),
        replicas: [...real.replicas, { service: 'web', replica: 9, name: `${c.name}-web-9`, container_id: id, state: 'running', health: 'none' }],
      });
    const b = await as(node('b'));
    await publishRefused(b, topics.state('a'), withFake('fake-state-from-b'));
    const b2 = await spoofer(node('b'));
    await spoofWhileChecking(
      () => b2.publish(topics.state('a'), withFake('fake-state-from-b')),
      (status) => expect(JSON.stringify(status)).not.toContain('fake-state-from-b'),
    );
    expect(JSON.stringify(JSON.parse((await c.run('cluster', 'status', '--json')).stdout))).not.toContain('fake-state-from-b');
    expect(ledgerText()).not.toContain('fake-state-from-b');

    const a = await as(node('a'));
    await a.publishAsync(topics.state('a'), withFake('own-state-from-a'));
    await waitFor('the ledger to record what a itself reports', async () => ledgerText().includes('own-state-from-a'), 10_000, 100);
  });

  it('never lets a node publish a desired state, for itself or another; the control plane can', async () => {
    const [current] = await (await watch(cp(), [topics.desired('a')])).next(topics.desired('a'));
    const desired = JSON.parse(current!.payload);
    const rogue = JSON.stringify({
      ...desired,
      revision: desired.revision + 1_000_000,
      replicas: [{ ...desired.replicas[0], service: 'rogue', replica: 1, name: `${c.name}-rogue-1`, spec_hash: 'abcdefabcdef' }],
    });
    const agentSide = await watch(node('a'), [topics.desired('a')]);
    await agentSide.next(topics.desired('a')); // the retained one
    await publishRefused(await as(node('a')), topics.desired('a'), rogue, { retain: true });
    await publishRefused(await as(node('b')), topics.desired('a'), rogue, { retain: true });
    await sleep(1_500);
    expect(agentSide.on(topics.desired('a')).length).toBe(1);
    expect((await containersOf(c.name, true)).map((x) => x.Labels['otto.service'])).not.toContain('rogue');
    const [kept] = await (await watch(cp(), [topics.desired('a')])).next(topics.desired('a'));
    expect(JSON.parse(kept!.payload).revision).toBe(desired.revision);

    // The control plane's identity reaches the node on the same topic (the same desired state again: a no-op).
    const control = await as(cp());
    await control.publishAsync(topics.desired('a'), current!.payload, { qos: 1 });
    await waitFor('the node to receive the control plane’s desired state', async () => agentSide.on(topics.desired('a')).length === 2, 5_000, 50);
  });

  it("never shows a node another node's desired state or secrets, nor a reader any desired state or secret; a reader reads metrics and status", async () => {
    const filters = [topics.desired('a'), topics.secrets('a'), 'otto/nodes/+/secrets'];
    const nodeB = await as(node('b'));
    const reader = await as(READER);
    const refusal = broker.refusedSubscriptionIsGranted ? 1 : 128;
    for (const filter of filters) expect(await grant(nodeB, filter), `node b: ${filter}`).toBe(refusal);
    for (const filter of [...filters, 'otto/nodes/+/desired']) expect(await grant(reader, filter), `reader: ${filter}`).toBe(refusal);
    const seen = { b: [] as string[], reader: [] as string[] };
    nodeB.on('message', (topic) => seen.b.push(topic));
    reader.on('message', (topic) => seen.reader.push(topic));

    // What they may not read goes by: a's desired state (again) and a secret for a node that does not exist.
    const nodeA = await watch(node('a'), [topics.desired('a')]);
    await nodeA.next(topics.desired('a'));
    const cpSecrets = await watch(cp(), ['otto/nodes/+/secrets']);
    const control = await as(cp());
    const [current] = await (await watch(cp(), [topics.desired('a')])).next(topics.desired('a'));
    await control.publishAsync(topics.desired('a'), current!.payload, { qos: 1 });
    await control.publishAsync(topics.secrets('nobody'), JSON.stringify({ value: 'not for readers' }), { qos: 1 });
    await waitFor('the right identities to receive both', async () => nodeA.on(topics.desired('a')).length === 2 && cpSecrets.on(topics.secrets('nobody')).length === 1, 5_000, 50);
    await sleep(500);
    expect(seen).toEqual({ b: [], reader: [] });

    // The reader's own rights: metrics as they come, statuses (retained).
    const readerWatch = await watch(READER, ['otto/nodes/+/metrics/#', 'otto/nodes/+/status']);
    await readerWatch.next(topics.nodeMetrics('a'));
    await readerWatch.next(topics.status('b'));
  });

  it("refuses a reader's publish, and (embedded only) one under its own name", async () => {
    const reader = await as(READER);
    await publishRefused(reader, topics.nodeMetrics('a'), '{"spoofed":"by a reader"}');
    const own = await as(READER);
    own.publish(`otto/nodes/${READER.username}/status`, '{"spoofed":"under the reader name"}');
    await sleep(1_000);
    expect(observer.on(topics.nodeMetrics('a')).some((m) => m.payload.includes('by a reader'))).toBe(false);
    expect(observer.on(`otto/nodes/${READER.username}/status`).length > 0).toBe(broker.readerMayPublishUnderItsName);
  });

  it("cannot push a node's agent off the broker by taking its client id", async () => {
    // The id an agent would have had if ids were guessable, and one in a's namespace without a's secret.
    for (const clientId of [`otto-agent-${c.name}-a`, `otto-agent-${c.name}-a-000000000000`]) {
      const attempt = mqtt.connect(url(), { ...node('b'), clientId, reconnectPeriod: 0, connectTimeout: 3_000 });
      await new Promise<void>((resolve) => {
        attempt.once('connect', () => resolve());
        attempt.once('error', () => resolve());
        attempt.once('close', () => resolve());
      });
      // The embedded broker refuses b under an id that is not its own; neither broker lets it reach a's session.
      expect(attempt.connected).toBe(broker.external);
      attempt.end(true);
    }
    await sleep(1_500);
    const status = await api();
    expect(status.nodes.find((n) => n.id === 'a')!.state).toBe('online');
    expect(observer.on(topics.status('a')).filter((m) => m.payload.includes('"offline"')).length).toBe(0);
  });

  it("drops a node's last will that names another node's status topic; its own will is delivered", async () => {
    const will = (nodeId: string, marker: string) => ({
      topic: topics.status(nodeId),
      payload: Buffer.from(JSON.stringify({ node_id: nodeId, state: 'offline', timestamp: new Date().toISOString(), reason: marker })),
      retain: true,
      qos: 1 as const,
    });
    const b = await as(node('b'), { will: will('a', 'will-spoofed-by-b') });
    b.stream.destroy();
    await spoofWhileChecking(
      () => undefined,
      (status) => expect(nodeView(status, 'a').state).toBe('online'),
      2_000,
    );
    expect(observer.on(topics.status('a')).some((m) => m.payload.includes('will-spoofed-by-b'))).toBe(false);

    // b's will on its own status topic is delivered (marked online, so b stays up).
    const ownWill = { ...will('b', 'own-will-of-b'), payload: Buffer.from(JSON.stringify({ node_id: 'b', state: 'online', timestamp: new Date().toISOString(), reason: 'own-will-of-b' })) };
    const b2 = await as(node('b'), { will: ownWill });
    b2.stream.destroy();
    await waitFor('b’s own will', async () => observer.on(topics.status('b')).some((m) => m.payload.includes('own-will-of-b')), 5_000, 50);
  });

  it('closes the connection of a 10 MB publish without holding it; a packet of exactly the limit goes through', async () => {
    const brokerPid = mosquitto?.pid ?? JSON.parse(readFileSync(join(c.dir, '.otto', 'control-plane.json'), 'utf8')).pid;
    const topic = 'otto/nodes/b/logs/stream/big-1';
    // Remaining length = 2 (topic length) + topic + payload, at QoS 0.
    const atLimit = Buffer.alloc(MAX_MQTT_PACKET_BYTES - 2 - topic.length, 'x');
    const sender = await as(node('b'));
    await sender.publishAsync(topic, atLimit);
    await waitFor('the packet at the limit delivered', async () => observer.on(topic).some((m) => m.size === atLimit.length), 10_000, 50);
    const overByOne = await as(node('b'));
    await publishClosing(overByOne, topic, Buffer.alloc(atLimit.length + 1, 'y'));

    const before = rssKb(brokerPid);
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rssKb(brokerPid))), 10);
    try {
      const tenMb = Buffer.alloc(10 * 1024 * 1024, 'z');
      const senders = await Promise.all([1, 2, 3, 4, 5].map(() => as(node('b'))));
      await Promise.all(senders.map((client) => publishClosing(client, topic, tenMb)));
      await sleep(300);
    } finally {
      clearInterval(sampler);
    }
    const growthKb = peak - before;
    console.log(`${broker.name}: broker RSS ${before} kB before five 10 MB publishes, peak ${peak} kB (+${growthKb} kB)`);
    // Holding even one of them would take 10 240 kB.
    expect(growthKb).toBeLessThan(4_096);
    expect(observer.on(topic).filter((m) => m.size > atLimit.length)).toEqual([]);
  });

  it('keeps a retained message only where Otto keeps one (Mosquitto: wherever the identity may publish)', async () => {
    const metrics = JSON.stringify({ node_id: 'b', timestamp: new Date().toISOString(), cpu_percent: 12.5, memory_percent: 1, memory_used_mb: 1, memory_total_mb: 1, disk_percent: 1, disk_used_gb: 1, disk_total_gb: 1, network_bytes_sent: 0, network_bytes_recv: 0 });
    const b = await as(node('b'));
    if (broker.keepsRetainedOnOwnMetrics) await b.publishAsync(topics.nodeMetrics('b'), metrics, { qos: 1, retain: true });
    else await publishRefused(b, topics.nodeMetrics('b'), metrics, { retain: true });
    const late = await watch(cp(), [topics.nodeMetrics('b')]);
    await sleep(700); // b's agent publishes non-retained metrics every second: a retained copy comes at once, flagged
    expect(late.on(topics.nodeMetrics('b')).some((m) => m.retain)).toBe(broker.keepsRetainedOnOwnMetrics);
    if (broker.keepsRetainedOnOwnMetrics) await (await as(node('b'))).publishAsync(topics.nodeMetrics('b'), '', { qos: 1, retain: true });

    // A retained status (where Otto keeps one) is kept: the refusal above was the retained rule.
    const [real] = await (await watch(cp(), [topics.status('b')])).next(topics.status('b'));
    const refreshed = JSON.stringify({ ...JSON.parse(real!.payload), timestamp: new Date().toISOString(), reason: 'kept-retained' });
    await (await as(node('b'))).publishAsync(topics.status('b'), refreshed, { qos: 1, retain: true });
    const [kept] = await (await watch(cp(), [topics.status('b')])).next(topics.status('b'));
    expect(kept!.payload).toContain('kept-retained');
  });

  it('took no container away in all of this; the node itself saying it is offline does (the check above was the identity)', async () => {
    expect((await containersOf(c.name)).map((x) => x.Id).sort()).toEqual(containersAtStart);
    expect(nodeView(await api(), 'a').state).toBe('online');
    const a = await as(node('a'));
    await a.publishAsync(topics.status('a'), JSON.stringify({ node_id: 'a', state: 'offline', timestamp: new Date().toISOString(), reason: 'said by a' }), { qos: 1, retain: true });
    await waitFor('a not online', async () => nodeView(await api(), 'a').state !== 'online', 10_000, 100);
  });
});

interface Seen {
  topic: string;
  payload: string;
  size: number;
  retain: boolean;
}

/** Records what one client receives. */
class Watcher {
  private readonly seen: Seen[] = [];

  constructor(
    readonly client: MqttClient,
    readonly grants: { topic: string; qos: number }[],
  ) {
    client.on('message', (topic, payload, packet) =>
      this.seen.push({ topic, payload: payload.length <= 65_536 ? payload.toString() : '', size: payload.length, retain: packet.retain }),
    );
  }

  on(topic: string): Seen[] {
    return this.seen.filter((m) => m.topic === topic);
  }

  /** The messages on `topic` once there is at least one. */
  next(topic: string, timeoutMs = 10_000): Promise<Seen[]> {
    return waitFor(`a message on ${topic}`, async () => (this.on(topic).length > 0 ? this.on(topic) : undefined), timeoutMs, 50);
  }
}

/** Publishes, and resolves once the broker has closed the connection (fails after 10 s). */
async function publishClosing(client: MqttClient, topic: string, payload: Buffer): Promise<void> {
  const closed = new Promise<boolean>((resolve) => client.once('close', () => resolve(true)));
  client.publish(topic, payload);
  const result = await Promise.race([closed, sleep(10_000).then(() => false)]);
  expect(result, `the broker to close the connection of a ${payload.length}-byte publish`).toBe(true);
}

function rssKb(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match![1]);
}

// ---- raw MQTT 3.1.1 packets, to send what no well-behaved client library would ----------------------

function remainingLength(length: number): Buffer {
  const bytes: number[] = [];
  do {
    let byte = length % 128;
    length = Math.floor(length / 128);
    if (length > 0) byte |= 0x80;
    bytes.push(byte);
  } while (length > 0);
  return Buffer.from(bytes);
}

function mqttString(value: string): Buffer {
  const text = Buffer.from(value);
  return Buffer.concat([Buffer.from([text.length >> 8, text.length & 0xff]), text]);
}

function packet(typeAndFlags: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([typeAndFlags]), remainingLength(body.length), body]);
}

function connectPacket(options: { clientId: string }): Buffer {
  const variable = Buffer.concat([mqttString('MQTT'), Buffer.from([0x04, 0x02, 0x00, 0x3c])]); // 3.1.1, clean session, keepalive 60 s
  return packet(0x10, Buffer.concat([variable, mqttString(options.clientId)]));
}

function subscribePacket(filter: string): Buffer {
  return packet(0x82, Buffer.concat([Buffer.from([0x00, 0x01]), mqttString(filter), Buffer.from([0x01])]));
}

/** Writes the packets in one go and collects what the broker answers until it closes (or 3 s pass). */
function rawSession(port: number, packets: Buffer[]): Promise<{ bytes: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket: Socket = connectTcp(port, '127.0.0.1', () => socket.write(Buffer.concat(packets)));
    const finish = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ bytes: Buffer.concat(chunks), closed });
    };
    const timer = setTimeout(() => finish(false), 3_000);
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('close', () => finish(true));
    socket.on('error', () => undefined);
  });
}
