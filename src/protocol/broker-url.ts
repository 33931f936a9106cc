/** Broker and API addresses, as agents, the control plane and the CLI dial them. */

export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  return bare === 'localhost' || bare.endsWith('.localhost') || bare === '::1' || /^127\.\d+\.\d+\.\d+$/.test(bare);
}

/** "Listen everywhere": something a server binds to, never an address a client can dial. */
export function isWildcardHost(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '[::]';
}

/** The address a client on this machine dials to reach a server listening on `host`. */
export function dialableHost(host: string): string {
  return isWildcardHost(host) ? '127.0.0.1' : host;
}

/** The URL agents, the control plane and the CLI use to reach the broker at `mqtt.host:port`. */
export function brokerUrl(mqttHost: string, port: number, tls = false): string {
  const host = dialableHost(mqttHost);
  return `${tls ? 'mqtts' : 'mqtt'}://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`;
}
