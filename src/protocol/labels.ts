/** Docker labels Otto puts on every container it manages; the agent finds its containers by them. */
export const LABEL = {
  cluster: 'otto.cluster',
  node: 'otto.node',
  service: 'otto.service',
  replica: 'otto.replica',
  specHash: 'otto.spec-hash',
} as const;

export function containerName(cluster: string, service: string, replica: number): string {
  return `${cluster}-${service}-${replica}`;
}
