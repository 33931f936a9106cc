/**
 * Who may tell agents what to do. On the embedded broker, only a client that proves it holds the
 * cluster's API token (the control plane, and the CLI for logs) may publish a node's desired state or a
 * logs request; anyone else who reaches the broker may read metrics but cannot make a node run anything.
 */
export const PRIVILEGED_MQTT_USER = 'otto-control-plane';

const privilegedTopic = /^otto\/nodes\/[^/]+\/(desired|logs\/request|logs\/control)$/;

export function isPrivilegedTopic(topic: string): boolean {
  return privilegedTopic.test(topic);
}

/**
 * The credentials of the control plane and the CLI: the token on the embedded broker; on an external
 * broker, the configured ones (its own ACLs are the operator's business).
 */
export function privilegedCredentials(mqtt: { embedded: boolean; username?: string; password?: string }, token: string): { username?: string; password?: string } {
  return mqtt.embedded ? { username: PRIVILEGED_MQTT_USER, password: token } : { username: mqtt.username, password: mqtt.password };
}
