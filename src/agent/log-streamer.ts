/**
 * Serves `otto service logs` over MQTT, so logs work for remote nodes as for local ones: reads a
 * container's logs from Docker as a stream and publishes them in bounded chunks to the requester's topic
 * (see log-session.ts for the backpressure).
 */
import type { IncomingMessage } from 'node:http';
import type Dockerode from 'dockerode';
import type { MqttClient } from 'mqtt';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { LABEL } from '../protocol/labels.js';
import type { LogsControl, LogsRequest } from '../protocol/messages.js';
import { topics } from '../protocol/topics.js';
import { LogSession } from './log-session.js';

/** A requester that stopped saying keepalive is gone (its CLI was killed); stop reading for it. */
const KEEPALIVE_TIMEOUT_MS = 45_000;
/** Each session holds a few chunks; a cap on sessions keeps the agent's memory bounded too. */
const MAX_SESSIONS = 32;

export class LogStreamer {
  private readonly sessions = new Map<string, LogSession>();
  private readonly reaper: NodeJS.Timeout;

  constructor(
    private readonly docker: Dockerode,
    private readonly client: () => MqttClient | undefined,
    private readonly cluster: string,
    private readonly nodeId: string,
    private readonly log: Logger,
  ) {
    this.reaper = setInterval(() => {
      for (const session of this.sessions.values()) {
        if (Date.now() - session.lastKeepalive > KEEPALIVE_TIMEOUT_MS) session.stop('the requester stopped sending keepalives');
      }
    }, 5_000);
    this.reaper.unref();
  }

  control(message: LogsControl): void {
    const session = this.sessions.get(message.request_id);
    if (!session) return;
    if (message.action === 'cancel') session.stop('cancelled by the requester');
    else session.keepalive(message.received);
  }

  stopAll(): void {
    clearInterval(this.reaper);
    for (const session of this.sessions.values()) session.stop('the agent is stopping');
  }

  async serve(request: LogsRequest): Promise<void> {
    // QoS 1 may deliver a request twice: serving it twice would print every line twice.
    if (this.sessions.has(request.request_id)) return;
    const session = new LogSession(request, (payload, done) => this.publish(request.request_id, payload, done), (reason) => {
      this.sessions.delete(request.request_id);
      if (reason) this.log.debug({ request: request.request_id, container: request.container, reason }, 'log stream stopped');
    });
    if (this.sessions.size >= MAX_SESSIONS) return session.fail(`node ${this.nodeId} already serves ${MAX_SESSIONS} log streams; try again later`);
    this.sessions.set(request.request_id, session);
    try {
      const info = await this.docker.getContainer(request.container).inspect();
      // Only this cluster's containers on this node: the request names a container, not any process.
      if (info.Config.Labels?.[LABEL.cluster] !== this.cluster || info.Config.Labels?.[LABEL.node] !== this.nodeId) {
        return session.fail(`${request.container} is not a container of cluster ${this.cluster} on node ${this.nodeId}`);
      }
      session.start(await this.openLogs(info.Id, request), info.Config.Tty === true);
    } catch (err) {
      session.fail(errorMessage(err));
    }
  }

  private publish(requestId: string, payload: string, done: (err?: Error) => void): void {
    const client = this.client();
    if (!client) return done(new Error('not connected to the MQTT broker'));
    client.publish(topics.logsStream(this.nodeId, requestId), payload, { qos: 1 }, (err) => done(err ?? undefined));
  }

  /**
   * dockerode's `container.logs()` reads the whole response into one Buffer unless `follow` is set
   * (docker-modem streams only when isStream is true, which it derives from `follow`), so the request
   * goes through the modem directly: always a stream, which Docker ends after the last line when not
   * following.
   */
  private openLogs(id: string, request: LogsRequest): Promise<IncomingMessage> {
    const query = { follow: request.follow, stdout: true, stderr: true, timestamps: false, tail: request.tail ?? 'all' };
    return new Promise((resolve, reject) => {
      this.docker.modem.dial(
        {
          path: `/containers/${encodeURIComponent(id)}/logs?`,
          method: 'GET',
          isStream: true,
          statusCodes: { 200: true, 404: 'no such container', 500: 'server error' },
          options: query,
        },
        (err, stream) => (err ? reject(err) : resolve(stream as IncomingMessage)),
      );
    });
  }
}
