/**
 * Docker's event stream for this node's containers: healing starts as soon as a container dies or is
 * removed, and a `docker stop` by someone else is noticed (the `unless-stopped` policy leaves such a
 * container stopped, as Docker does). Re-subscribes when the stream ends.
 */
import type { DockerRuntime } from '../runtime/docker.js';
import { LABEL } from '../protocol/labels.js';

export interface ContainerEvent {
  id: string;
  action: string;
}

export class DockerEventsWatcher {
  private stream?: NodeJS.ReadableStream & { destroy?: () => void };
  private subscribing = false;
  private closed = false;

  constructor(
    private readonly runtime: DockerRuntime,
    private readonly labels: { cluster: string; node: string },
    private readonly onEvent: (event: ContainerEvent) => void,
  ) {}

  get watching(): boolean {
    return this.stream !== undefined || this.subscribing;
  }

  /** Subscribes unless a subscription is live; call it again whenever Docker may be back. */
  ensure(): void {
    if (this.watching || this.closed) return;
    this.subscribing = true;
    const filters = {
      type: ['container' as const],
      event: ['start', 'die', 'destroy', 'stop', 'health_status'],
      label: [`${LABEL.cluster}=${this.labels.cluster}`, `${LABEL.node}=${this.labels.node}`],
    };
    this.runtime.docker.getEvents({ filters }, (err, stream) => {
      this.subscribing = false;
      if (err || !stream) return;
      if (this.closed) {
        (stream as { destroy?: () => void }).destroy?.();
        return;
      }
      this.stream = stream as typeof this.stream;
      let partial = '';
      stream.on('data', (chunk: Buffer) => {
        const lines = (partial + chunk.toString('utf8')).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) {
          try {
            const event = JSON.parse(line) as { id?: string; Action?: string; status?: string };
            const id = event.id;
            const action = event.Action ?? event.status;
            if (id && action) this.onEvent({ id, action: action.split(':')[0]! });
          } catch {
            // a torn or foreign line: nothing to act on
          }
        }
      });
      const ended = () => {
        if (this.stream === stream) this.stream = undefined;
      };
      stream.on('end', ended);
      stream.on('close', ended);
      stream.on('error', ended);
    });
  }

  close(): void {
    this.closed = true;
    this.stream?.destroy?.();
    this.stream = undefined;
  }
}
