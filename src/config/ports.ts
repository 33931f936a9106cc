/** Port specs as written under `services[].ports` ("8080:80", "127.0.0.1:8080:80", "53:53/udp"). */
import { isIP } from 'node:net';
import type { PortMapping } from '../protocol/messages.js';

const EXPECTED_FORM = 'expected "HOST:CONTAINER[/PROTO]" such as "8080:80"';

/**
 * Parses one port spec. Throws an Error whose message is the reason only (e.g. `container port 99999 is
 * out of range 1-65535`), so callers can prefix it with the spec and where it came from.
 *
 * A lone container port ("80") is rejected: Docker would pick a random host port, which nobody can find
 * again on an edge node.
 */
export function parsePortSpec(spec: string | number): PortMapping {
  if (typeof spec === 'number') throw new Error(EXPECTED_FORM);
  const [mapping = '', protocol = 'tcp', ...extraSlashes] = spec.trim().split('/');
  if (extraSlashes.length > 0) throw new Error(EXPECTED_FORM);
  if (protocol !== 'tcp' && protocol !== 'udp') throw new Error(`unsupported protocol "${protocol}" (expected tcp or udp)`);

  const { hostIp, ports } = splitHostIp(mapping);
  if (ports.length !== 2) throw new Error(EXPECTED_FORM);
  if (hostIp !== undefined && isIP(hostIp) === 0) throw new Error(`"${hostIp}" is not an IP address`);
  const [hostPort, containerPort] = ports as [string, string];

  return {
    ...(hostIp !== undefined && { host_ip: hostIp }),
    host_port: parsePort(hostPort, 'host'),
    container_port: parsePort(containerPort, 'container'),
    protocol,
  };
}

/** "[::1]:8080:80" keeps its colons inside the brackets; "127.0.0.1:8080:80" has three parts. */
function splitHostIp(mapping: string): { hostIp?: string; ports: string[] } {
  const bracketed = /^\[([^\]]*)\]:(.*)$/.exec(mapping);
  if (bracketed) return { hostIp: bracketed[1], ports: bracketed[2]!.split(':') };
  const parts = mapping.split(':');
  return parts.length === 3 ? { hostIp: parts[0], ports: parts.slice(1) } : { ports: parts };
}

function parsePort(text: string, which: 'host' | 'container'): number {
  if (text === '') throw new Error(`missing ${which} port; ${EXPECTED_FORM}`);
  if (/^\d+-\d+$/.test(text)) throw new Error(`port ranges such as "${text}" are not supported; list each port`);
  if (!/^\d+$/.test(text)) throw new Error(`${which} port "${text}" is not a number`);
  const port = Number(text);
  if (port < 1 || port > 65535) throw new Error(`${which} port ${port} is out of range 1-65535`);
  return port;
}
