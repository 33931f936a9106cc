/**
 * How clients reach the broker and the API: TLS or not, which port. One answer for the control plane, the
 * agents and the CLI. `auto` turns TLS on whenever traffic may leave this machine: a node that is not
 * local, or a server listening beyond loopback.
 */
import { join } from 'node:path';
import { isLoopbackHost } from '../protocol/broker-url.js';
import { isLocalNode } from './nodes.js';
import type { OttoConfig } from './schema.js';

export interface BrokerTransport {
  tls: boolean;
  /** Otto makes and keeps the certificates itself (.otto/tls). */
  ownCa: boolean;
  port: number;
}

export function brokerTransport(config: OttoConfig): BrokerTransport {
  const { tls } = config.mqtt;
  const reachedFromAfar = config.nodes.some((n) => !isLocalNode(n)) || config.node_pools.length > 0 || !isLoopbackHost(config.mqtt.host);
  const on = tls === 'off' ? false : tls === 'auto' ? config.mqtt.embedded && reachedFromAfar : true;
  return { tls: on, ownCa: on && tls === 'auto', port: config.mqtt.port ?? (on ? 8883 : 1883) };
}

/** The CA clients verify the broker with: the user's (mqtt.tls.ca) or Otto's own; undefined without TLS. */
export function brokerCaFile(config: OttoConfig, tlsDir: string): string | undefined {
  if (!brokerTransport(config).tls) return undefined;
  return typeof config.mqtt.tls === 'object' ? config.mqtt.tls.ca : join(tlsDir, 'ca.pem');
}

export function apiTls(config: OttoConfig): { tls: boolean; ownCa: boolean } {
  const { tls, listen } = config.http;
  const on = tls === 'off' ? false : tls === 'auto' ? !isLoopbackHost(listen) : true;
  return { tls: on, ownCa: on && tls === 'auto' };
}

/** Plain traffic that leaves this machine: said at validate and at start (`mqtt.tls: off` asked for it). */
export function transportWarnings(config: OttoConfig): string[] {
  const warnings: string[] = [];
  const remote = config.nodes.filter((n) => !isLocalNode(n)).map((n) => n.id);
  if (config.mqtt.tls === 'off' && (remote.length > 0 || !isLoopbackHost(config.mqtt.host))) {
    const who = remote.length ? `nodes ${remote.join(', ')} reach the broker` : `the broker listens on ${config.mqtt.host}`;
    warnings.push(`mqtt.tls is off: ${who} over plain MQTT; credentials and desired states can be read on the network (remove mqtt.tls: off to get TLS)`);
  }
  if (config.http.tls === 'off' && !isLoopbackHost(config.http.listen)) {
    warnings.push(`http.tls is off: the API on ${config.http.listen} takes its token over plain HTTP`);
  }
  return warnings;
}
