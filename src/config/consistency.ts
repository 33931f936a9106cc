/** Checks that span several fields, run once the file matches the schema. */
import type { PortMapping } from '../protocol/messages.js';
import { show } from './issues.js';
import { isLocalHost, isLocalNode } from './nodes.js';
import { parsePortSpec } from './ports.js';
import type { OttoConfig, ServiceConfig } from './schema.js';
import { nfrProblems } from './nfr-checks.js';
import { secretProblems } from './secret-checks.js';
import type { ConfigPath, Problem } from './source.js';
import { closestMatch } from './suggest.js';
import { reservedUsernames } from '../protocol/broker-auth.js';

/** `where(path)` renders the position of another node, for "first at otto.yaml:4:9". */
export function checkConsistency(config: OttoConfig, where: (path: ConfigPath) => string): Problem[] {
  const nodeIds = config.nodes.map((node) => node.id);
  return [
    ...duplicates(nodeIds, 'nodes', 'id', 'node id', where),
    ...duplicates(config.services.map((service) => service.name), 'services', 'name', 'service name', where),
    ...config.services.flatMap((service, index) => nodeProblems(service, index, nodeIds)),
    ...config.services.flatMap(environmentProblems),
    ...portProblems(config, nodeIds),
    ...remoteBrokerProblems(config),
    ...identityProblems(config),
    ...reachProblems(config),
    ...tlsProblems(config),
    ...secretProblems(config, where),
    ...nfrProblems(config),
  ];
}

/** TLS settings that cannot work: an external broker across the network with no CA, an embedded one with no key. */
function tlsProblems(config: OttoConfig): Problem[] {
  const { tls, embedded, host } = config.mqtt;
  if (tls === 'auto' && !embedded && !loopbackHost.test(host)) {
    return [
      {
        path: ['mqtt', 'tls'],
        message: `Otto reaches the external broker at "${host}" over the network: give the CA its certificate is signed by (mqtt.tls: { ca: FILE }), or set mqtt.tls: off to send everything in the clear`,
      },
    ];
  }
  if (typeof tls === 'object' && embedded && (!tls.cert || !tls.key)) {
    return [{ path: ['mqtt', 'tls'], message: 'the embedded broker needs its certificate and key: set mqtt.tls.cert and mqtt.tls.key (or mqtt.tls: auto to let Otto make them)' }];
  }
  return [];
}

/**
 * How each node is reached must be clear: a node on another machine is reached over SSH (user) or dials in
 * (join: true); one with neither would silently run on this machine, against its Docker.
 */
function reachProblems(config: OttoConfig): Problem[] {
  const problems: Problem[] = [];
  config.nodes.forEach((node, index) => {
    if (node.join && (node.user || node.ssh)) {
      problems.push({ path: ['nodes', index, 'join'], message: `node "${node.id}" both joins by itself and is reached over SSH: keep join: true or user/ssh, not both` });
    } else if (!node.join && node.host === undefined) {
      problems.push({ path: ['nodes', index], message: `node "${node.id}" has no host: give its address (localhost for this machine), or join: true for a node that dials in` });
    } else if (!node.join && !node.user && !isLocalHost(node.host)) {
      problems.push({
        path: ['nodes', index, 'host'],
        message: `node "${node.id}" is at "${node.host}", another machine, with neither user (reached over SSH) nor join: true (dials in): it would run on this machine instead; add one of them`,
      });
    }
    if (node.id.startsWith('otto-')) problems.push({ path: ['nodes', index, 'id'], message: `node ids starting with "otto-" are Otto's own broker identities; rename "${node.id}"` });
  });
  const pools = new Set<string>();
  config.node_pools.forEach((pool, index) => {
    if (pools.has(pool.name)) problems.push({ path: ['node_pools', index, 'name'], message: `node pool "${pool.name}" is listed twice` });
    pools.add(pool.name);
  });
  return problems;
}

/** A node's id is its broker username: it may not be the control plane's, nor a reader's. */
function identityProblems(config: OttoConfig): Problem[] {
  const problems: Problem[] = [];
  config.nodes.forEach((node, index) => {
    if (reservedUsernames().includes(node.id)) {
      problems.push({ path: ['nodes', index, 'id'], message: `"${node.id}" is the control plane's broker identity; give the node another id` });
    }
  });
  const nodeIds = new Set(config.nodes.map((n) => n.id));
  const seen = new Set<string>();
  config.mqtt.readers.forEach((reader, index) => {
    const path: ConfigPath = ['mqtt', 'readers', index, 'username'];
    if (nodeIds.has(reader.username) || reservedUsernames().includes(reader.username)) {
      problems.push({ path, message: `reader "${reader.username}" would take the broker identity of ${nodeIds.has(reader.username) ? 'a node' : 'the control plane'}; choose another name` });
    } else if (seen.has(reader.username)) {
      problems.push({ path, message: `reader "${reader.username}" is listed twice` });
    }
    seen.add(reader.username);
  });
  return problems;
}

const loopbackHost = /^(localhost|.*\.localhost|::1|\[::1\]|127\.\d+\.\d+\.\d+)$/i;

/**
 * Remote nodes (reached over SSH) get mqtt.advertise, or mqtt.host when it is routable: a loopback
 * mqtt.host without mqtt.advertise would hand them "localhost", which on a node is the node itself.
 */
function remoteBrokerProblems(config: OttoConfig): Problem[] {
  const remote = [...config.nodes.filter((node) => !isLocalNode(node)), ...config.node_pools.map((pool) => ({ id: `pool ${pool.name}` }))];
  if (remote.length === 0) return [];
  const { host, advertise, embedded } = config.mqtt;
  const first = remote[0]!.id;
  if (advertise === undefined && loopbackHost.test(host)) {
    const others = remote.length > 1 ? ` (nor can ${remote.length - 1} other remote node(s))` : '';
    return [
      {
        path: ['mqtt', 'host'],
        message: `remote node "${first}" cannot reach the broker at "${host}"${others}; set mqtt.advertise to an address ${first} can route to`,
      },
    ];
  }
  if (advertise !== undefined && embedded && loopbackHost.test(host) && !loopbackHost.test(advertise)) {
    return [
      {
        path: ['mqtt', 'host'],
        message: `the embedded broker listens on "${host}" only, so remote node "${first}" cannot reach it at mqtt.advertise "${advertise}"; set mqtt.host to "0.0.0.0" or to "${advertise}"`,
      },
    ];
  }
  return [];
}

function duplicates(
  names: string[],
  list: string,
  field: string,
  what: string,
  where: (path: ConfigPath) => string,
): Problem[] {
  const firstIndex = new Map<string, number>();
  const problems: Problem[] = [];
  names.forEach((name, index) => {
    const first = firstIndex.get(name);
    if (first === undefined) firstIndex.set(name, index);
    else problems.push({ path: [list, index, field], message: `duplicate ${what} "${name}" (first at ${where([list, first, field])})` });
  });
  return problems;
}

function nodeProblems(service: ServiceConfig, index: number, nodeIds: string[]): Problem[] {
  if (service.node === undefined) return [];
  if (service.placement) {
    return [
      {
        path: ['services', index, 'placement'],
        message: 'cannot be combined with "node"; pin the service with "node" or let "placement" choose',
        atKey: true,
      },
    ];
  }
  if (nodeIds.includes(service.node)) return [];
  const suggestion = closestMatch(service.node, nodeIds);
  const hint = suggestion ? `, did you mean "${suggestion}"?` : '';
  return [{ path: ['services', index, 'node'], message: `unknown node "${service.node}"${hint} (nodes: ${[...new Set(nodeIds)].join(', ')})` }];
}

function environmentProblems(service: ServiceConfig, index: number): Problem[] {
  if (!Array.isArray(service.environment)) return [];
  return service.environment.flatMap((entry, entryIndex) =>
    /^[^=\s]+(=|$)/.test(entry)
      ? []
      : [{ path: ['services', index, 'environment', entryIndex], message: `expected "NAME=value" or "NAME", got ${show(entry)}` }],
  );
}

interface Binding {
  serviceIndex: number;
  portIndex: number;
  service: string;
  port: PortMapping;
}

/** Bad port specs, and host ports that two containers on one node would both bind. */
function portProblems(config: OttoConfig, nodeIds: string[]): Problem[] {
  const problems: Problem[] = [];
  const bindingsByNode = new Map<string, Binding[]>();
  config.services.forEach((service, serviceIndex) => {
    // Only a pinned service, or any service in a one-node cluster, has a node known before placement runs.
    const node = service.node ?? (nodeIds.length === 1 ? nodeIds[0] : undefined);
    const placed = node !== undefined && nodeIds.includes(node) && service.replicas > 0;
    service.ports.forEach((spec, portIndex) => {
      const path = ['services', serviceIndex, 'ports', portIndex];
      let port: PortMapping;
      try {
        port = parsePortSpec(spec);
      } catch (err) {
        problems.push({ path, message: `invalid port ${show(spec)}: ${(err as Error).message}` });
        return;
      }
      if (!placed) return;
      if (service.replicas > 1) {
        problems.push({
          path,
          message: `host port ${describe(port)} on node "${node}" would be bound by each of the ${service.replicas} replicas; use replicas: 1 or drop the host port`,
        });
      }
      const bindings = bindingsByNode.get(node) ?? [];
      const taken = bindings.find((other) => clashes(other.port, port));
      if (taken) problems.push({ path, message: conflictMessage(port, node, serviceIndex, taken) });
      bindings.push({ serviceIndex, portIndex, service: service.name, port });
      bindingsByNode.set(node, bindings);
    });
  });
  return problems;
}

function conflictMessage(port: PortMapping, node: string, serviceIndex: number, taken: Binding): string {
  const owner = taken.serviceIndex === serviceIndex ? `ports[${taken.portIndex}] of this service` : `service "${taken.service}"`;
  return `host port ${describe(port)} on node "${node}" is already used by ${owner}`;
}

/** Binding 0.0.0.0 (or no address) takes the port on every address, so it clashes with any specific one. */
function clashes(a: PortMapping, b: PortMapping): boolean {
  if (a.host_port !== b.host_port || a.protocol !== b.protocol) return false;
  return isWildcard(a.host_ip) || isWildcard(b.host_ip) || a.host_ip === b.host_ip;
}

function isWildcard(ip: string | undefined): boolean {
  return ip === undefined || ip === '0.0.0.0' || ip === '::';
}

function describe(port: PortMapping): string {
  const address = port.host_ip === undefined ? '' : port.host_ip.includes(':') ? `[${port.host_ip}]:` : `${port.host_ip}:`;
  return `${address}${port.host_port}/${port.protocol}`;
}
