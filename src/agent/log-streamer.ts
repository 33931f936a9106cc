/**
 * Serves `otto service logs` over MQTT, so logs work for remote nodes as for local ones: reads a
 * container's logs from Docker and publishes them in small batches to the requester's topic.
 */
import { PassThrough } from 'node:stream';
import type Dockerode from 'dockerode';
import type { MqttClient } from 'mqtt';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { LABEL } from '../protocol/labels.js';
import { encode, type LogsChunk, type LogsControl, type LogsRequest } from '../protocol/messages.js';
import { topics } from '../protocol/topics.js';

const FLUSH_MS = 200;
const MAX_LINES_PER_CHUNK = 500;
/** A follower that stopped saying keepalive is gone (its CLI was killed); stop reading for it. */
const KEEPALIVE_TIMEOUT_MS = 45_000;

interface Session {
  stop: () => void;
  lastKeepalive: number;
}

export class LogStreamer {
  private readonly sessions = new Map<string, Session>();
  private readonly reaper: NodeJS.Timeout;

  constructor(
    private readonly docker: Dockerode,
    private readonly client: () => MqttClient | undefined,
    private readonly cluster: string,
    private readonly nodeId: string,
    private readonly log: Logger,
  ) {
    this.reaper = setInterval(() => {
      for (const session of this.sessions.values()) if (Date.now() - session.lastKeepalive > KEEPALIVE_TIMEOUT_MS) session.stop();
    }, 5_000);
    this.reaper.unref();
  }

  control(message: LogsControl): void {
    const session = this.sessions.get(message.request_id);
    if (!session) return;
    if (message.action === 'cancel') session.stop();
    else session.lastKeepalive = Date.now();
  }

  stopAll(): void {
    clearInterval(this.reaper);
    for (const session of this.sessions.values()) session.stop();
  }

  async serve(request: LogsRequest): Promise<void> {
    let seq = 0;
    const publish = (chunk: Omit<LogsChunk, 'request_id' | 'seq'>) =>
      this.client()?.publish(topics.logsStream(request.request_id), encode({ request_id: request.request_id, seq: seq++, ...chunk }), { qos: 1 });
    try {
      const container = this.docker.getContainer(request.container);
      const info = await container.inspect();
      // Only this cluster's containers on this node: the request names a container, not any process.
      if (info.Config.Labels?.[LABEL.cluster] !== this.cluster || info.Config.Labels?.[LABEL.node] !== this.nodeId) {
        publish({ lines: [], end: true, error: `${request.container} is not a container of cluster ${this.cluster} on node ${this.nodeId}` });
        return;
      }
      const options = { stdout: true, stderr: true, timestamps: false, ...(request.tail === undefined ? {} : { tail: request.tail }) };
      const raw: NodeJS.ReadableStream | Buffer = request.follow
        ? await container.logs({ ...options, follow: true })
        : await container.logs({ ...options, follow: false });
      await this.pump(request, raw, info.Config.Tty === true, publish);
    } catch (err) {
      publish({ lines: [], end: true, error: errorMessage(err) });
    }
  }

  private pump(
    request: LogsRequest,
    raw: NodeJS.ReadableStream | Buffer,
    tty: boolean,
    publish: (chunk: Omit<LogsChunk, 'request_id' | 'seq'>) => void,
  ): Promise<void> {
    const pending: LogsChunk['lines'] = [];
    const partial = { stdout: '', stderr: '' };
    const flush = () => {
      while (pending.length) publish({ lines: pending.splice(0, MAX_LINES_PER_CHUNK) });
    };
    const timer = setInterval(flush, FLUSH_MS);
    const sink = (stream: 'stdout' | 'stderr') => {
      const out = new PassThrough();
      out.on('data', (data: Buffer) => {
        const parts = (partial[stream] + data.toString('utf8')).split('\n');
        partial[stream] = parts.pop() ?? '';
        for (const text of parts) pending.push({ stream, text });
      });
      return out;
    };
    const stdout = sink('stdout');
    const stderr = sink('stderr');
    return new Promise<void>((resolve) => {
      let finished = false;
      const finish = () => {
        if (finished) return;
        finished = true;
        this.sessions.delete(request.request_id);
        clearInterval(timer);
        for (const stream of ['stdout', 'stderr'] as const) if (partial[stream]) pending.push({ stream, text: partial[stream] });
        flush();
        publish({ lines: [], end: true });
        resolve();
      };
      if (Buffer.isBuffer(raw)) {
        if (tty) stdout.write(raw);
        else demux(raw, stdout, stderr);
        finish();
        return;
      }
      const stream = raw as NodeJS.ReadableStream & { destroy?: () => void };
      this.sessions.set(request.request_id, {
        lastKeepalive: Date.now(),
        stop: () => {
          stream.destroy?.();
          finish();
        },
      });
      if (tty) stream.pipe(stdout);
      else this.docker.modem.demuxStream(stream, stdout, stderr);
      stream.on('end', finish);
      stream.on('close', finish);
      stream.on('error', (err) => {
        this.log.warn({ err: errorMessage(err) }, 'log stream failed');
        finish();
      });
    });
  }
}

/** Docker's multiplexed log format: 8-byte header (stream type, length) before each frame. */
function demux(buffer: Buffer, stdout: PassThrough, stderr: PassThrough): void {
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const type = buffer[offset];
    const length = buffer.readUInt32BE(offset + 4);
    const frame = buffer.subarray(offset + 8, offset + 8 + length);
    (type === 2 ? stderr : stdout).write(frame);
    offset += 8 + length;
  }
}
