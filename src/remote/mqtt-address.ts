/** The broker address remote agents are given: it must be one they can route to, never localhost. */
import { networkInterfaces } from 'node:os';
import type { OttoConfig } from '../config/schema.js';
import { isLoopbackHost, isWildcardHost } from '../protocol/broker-url.js';
import { brokerTransport } from '../config/transport.js';

type Interfaces = ReturnType<typeof networkInterfaces>;


/** Container bridges and tunnels, which a remote node cannot route to. */
const virtualInterface = /^(docker\d*|br-|veth|virbr|cni|flannel|cali|vxlan|tun|tap|wg|zt|lo)/;

/** This machine's first non-loopback IPv4 address on a physical-looking interface. */
export function routableIPv4(interfaces: Interfaces = networkInterfaces()): string | undefined {
  const candidates: { name: string; address: string }[] = [];
  for (const [name, addresses] of Object.entries(interfaces)) {
    for (const address of addresses ?? []) {
      if (address.family === 'IPv4' && !address.internal && !address.address.startsWith('169.254.')) candidates.push({ name, address: address.address });
    }
  }
  return (candidates.find((c) => !virtualInterface.test(c.name)) ?? candidates[0])?.address;
}

/**
 * Where remote agents reach the broker: mqtt.advertise; else mqtt.host when it is a specific, routable
 * address; else (0.0.0.0) this machine's routable IPv4 address. Undefined when there is none (validation
 * rejects a loopback mqtt.host with remote nodes and no mqtt.advertise).
 */
export function remoteBrokerHost(mqtt: OttoConfig['mqtt'], interfaces?: Interfaces): string | undefined {
  if (mqtt.advertise) return mqtt.advertise;
  if (!isWildcardHost(mqtt.host) && !isLoopbackHost(mqtt.host)) return mqtt.host;
  if (isWildcardHost(mqtt.host)) return routableIPv4(interfaces);
  return undefined;
}

/** `mqtt[s]://host:port` for remote agents. */
export function remoteMqttUrl(config: OttoConfig, interfaces?: Interfaces): string | undefined {
  const host = remoteBrokerHost(config.mqtt, interfaces);
  if (!host) return undefined;
  const { port, tls } = brokerTransport(config);
  return `${tls ? 'mqtts' : 'mqtt'}://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`;
}

/**
 * The URL with a node's credential as its user info. The credentials ride in the URL only inside Otto:
 * RemoteAgent takes them out (splitMqttCredentials) before the agent's command line is written, and hands
 * them over in a file readable by the SSH user only.
 */
export function withCredentials(url: string, credentials: { username: string; password: string } | undefined): string {
  if (!credentials) return url;
  const parsed = new URL(url);
  parsed.username = encodeURIComponent(credentials.username);
  parsed.password = encodeURIComponent(credentials.password);
  return parsed.toString().replace(/\/$/, '');
}

/** The URL without its password, for logs and tables. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}

export interface MqttCredentials {
  username: string;
  password?: string;
}

/** Splits `mqtt://user:password@host:port` into the URL without its user info and the credentials in it. */
export function splitMqttCredentials(url: string): { url: string; credentials?: MqttCredentials } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { url };
  }
  if (!parsed.username && !parsed.password) return { url };
  const credentials: MqttCredentials = { username: decodeURIComponent(parsed.username) };
  // `user@` has no password; `user:@` has an empty one.
  if (parsed.password || /^[^:]+:\/\/[^/@]*:[^/@]*@/.test(url)) credentials.password = decodeURIComponent(parsed.password);
  parsed.username = '';
  parsed.password = '';
  return { url: parsed.toString(), credentials };
}
