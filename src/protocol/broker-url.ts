/** The URL agents, the control plane and the CLI use to reach the broker at `mqtt.host:mqtt.port`. */
export function brokerUrl(mqttHost: string, port: number): string {
  const host = mqttHost === '0.0.0.0' || mqttHost === '::' ? '127.0.0.1' : mqttHost;
  return `mqtt://${host.includes(':') ? `[${host}]` : host}:${port}`;
}
