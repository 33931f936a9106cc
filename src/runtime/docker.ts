/**
 * Docker, as the agent needs it: find the containers Otto manages on this node, create them from a
 * ReplicaSpec, stop them gracefully, pull images with progress. Every call has a deadline, so a hung
 * engine stalls one action, never the agent; every Docker failure becomes an InfrastructureError.
 */
import Dockerode from 'dockerode';
import { InfrastructureError, errorMessage } from '../errors.js';
import { LABEL } from '../protocol/labels.js';
import type { ContainerSpec, DockerHealth, ReplicaSpec, ReplicaState } from '../protocol/messages.js';
import type { SecretRef } from '../protocol/secrets.js';

export function dockerFromUrl(url: string): Dockerode {
  if (url.startsWith('unix://')) return new Dockerode({ socketPath: url.slice('unix://'.length) });
  const parsed = new URL(url.replace(/^tcp:/, 'http:'));
  return new Dockerode({
    host: parsed.hostname,
    port: Number(parsed.port || 2375),
    protocol: parsed.protocol === 'https:' ? 'https' : 'http',
  });
}

/** Docker's default, and Compose's: what `docker stop` waits before it kills. */
export const DEFAULT_STOP_GRACE_MS = 10_000;

/** Deadlines of Docker calls (ms). A stop gets its grace period on top. */
export const DOCKER_TIMEOUTS = { quick: 10_000, list: 15_000, change: 30_000, stopMargin: 15_000 };

export interface ManagedContainer {
  id: string;
  name: string;
  service: string;
  replica: number;
  specHash: string;
  state: ReplicaState['state'];
  health: ReplicaState['health'];
  /** Docker's creation time in seconds. */
  created: number;
  /** For a stopped container, the code its main process exited with. */
  exitCode?: number;
}

export interface PullProgress {
  /** 0-100 once the sizes of the layers are known. */
  percent?: number;
  bytesDone: number;
  bytesTotal: number;
}

const dockerStates = new Set(['running', 'created', 'restarting', 'exited', 'paused', 'dead', 'removing']);

function healthFromStatus(status: string): ReplicaState['health'] {
  if (status.includes('(healthy)')) return 'healthy';
  if (status.includes('(unhealthy)')) return 'unhealthy';
  if (status.includes('(health: starting)')) return 'starting';
  return 'none';
}

/** `Exited (137) 2 minutes ago` -> 137. */
export function exitCodeFromStatus(status: string): number | undefined {
  const match = /^Exited \((-?\d+)\)/.exec(status);
  return match ? Number(match[1]) : undefined;
}

/** Rejects with a TimeoutError when `promise` has not settled within `ms` (the call itself is left to finish). */
function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error('no answer from the Docker engine in time'), { name: 'TimeoutError' })), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

const statusCode = (err: unknown) => (err as { statusCode?: number }).statusCode;

/** Sums the per-layer progress events of a pull into one figure. */
export class PullProgressTracker {
  private readonly layers = new Map<string, { done: number; total: number }>();

  update(event: { id?: string; status?: string; progressDetail?: { current?: number; total?: number } }): PullProgress {
    const id = event.id;
    if (id) {
      const layer = this.layers.get(id) ?? { done: 0, total: 0 };
      const detail = event.progressDetail ?? {};
      if (event.status === 'Downloading' && detail.total) {
        layer.total = detail.total;
        layer.done = Math.min(detail.current ?? 0, detail.total);
      } else if (event.status === 'Download complete' || event.status === 'Pull complete' || event.status === 'Already exists') {
        layer.done = layer.total;
      }
      this.layers.set(id, layer);
    }
    return this.current();
  }

  current(): PullProgress {
    let bytesDone = 0;
    let bytesTotal = 0;
    for (const layer of this.layers.values()) {
      bytesDone += layer.done;
      bytesTotal += layer.total;
    }
    return { bytesDone, bytesTotal, percent: bytesTotal > 0 ? Math.floor((bytesDone / bytesTotal) * 100) : undefined };
  }
}

export interface RuntimeOptions {
  /**
   * The host file holding a secret's value, bind-mounted read-only at /run/secrets/NAME, for a container
   * whose image runs as `user` (the image's USER; empty: root).
   */
  secretFile?: (ref: SecretRef, user: string) => Promise<string>;
}

/** Where a container finds its secrets, as with Swarm and Compose. */
export const SECRETS_TARGET_DIR = '/run/secrets';

export class DockerRuntime {
  constructor(
    readonly docker: Dockerode,
    private readonly cluster: string,
    private readonly nodeId: string,
    private readonly options: RuntimeOptions = {},
  ) {}

  async health(): Promise<DockerHealth> {
    try {
      const version = await withDeadline(this.docker.version(), DOCKER_TIMEOUTS.quick);
      return { reachable: true, version: version.Version };
    } catch (err) {
      return { reachable: false, error: errorMessage(err) };
    }
  }

  /** Every container of the engine, running or not: one call serves reconcile and metrics alike. */
  async listAll(): Promise<Dockerode.ContainerInfo[]> {
    return this.wrap('list containers', () => this.docker.listContainers({ all: true, abortSignal: AbortSignal.timeout(DOCKER_TIMEOUTS.list) }));
  }

  /** Every container of this cluster on this node, running or not. */
  async listManaged(): Promise<ManagedContainer[]> {
    return this.managedOf(await this.listAll());
  }

  managedOf(list: Dockerode.ContainerInfo[]): ManagedContainer[] {
    const ours = list.filter((c) => c.Labels[LABEL.cluster] === this.cluster && c.Labels[LABEL.node] === this.nodeId);
    return ours.map((c) => ({
      id: c.Id,
      name: (c.Names[0] ?? '').replace(/^\//, ''),
      service: c.Labels[LABEL.service] ?? '',
      replica: Number(c.Labels[LABEL.replica] ?? 0),
      specHash: c.Labels[LABEL.specHash] ?? '',
      state: (dockerStates.has(c.State) ? c.State : 'dead') as ManagedContainer['state'],
      health: healthFromStatus(c.Status),
      created: c.Created,
      exitCode: exitCodeFromStatus(c.Status),
    }));
  }

  async hasImage(image: string): Promise<boolean> {
    try {
      // Image inspect takes no abort signal in dockerode: a deadline of our own.
      await withDeadline(this.docker.getImage(image).inspect(), DOCKER_TIMEOUTS.quick);
      return true;
    } catch (err) {
      if (statusCode(err) === 404) return false;
      throw new InfrastructureError(`docker: inspect image ${image}: ${errorMessage(err)}`, 'is the Docker engine running? try `docker info`');
    }
  }

  /**
   * Pulls an image, reporting progress. A pull may take minutes on a slow link; it is given up only when
   * nothing moved for `stallMs` (a registry that hangs), or when `signal` aborts it.
   */
  async pull(
    image: string,
    onProgress: (progress: PullProgress) => void,
    options: { stallMs: number; signal?: AbortSignal; auth?: Dockerode.AuthConfigObject },
  ): Promise<void> {
    const controller = new AbortController();
    const abort = () => controller.abort(options.signal?.reason);
    options.signal?.addEventListener('abort', abort, { once: true });
    let stalled = false;
    let watchdog: NodeJS.Timeout | undefined;
    const armWatchdog = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => {
        stalled = true;
        controller.abort();
      }, options.stallMs);
    };
    try {
      await this.wrap(`pull ${image}`, async () => {
        armWatchdog();
        const stream = (await this.docker.pull(image, { abortSignal: controller.signal, ...(options.auth ? { authconfig: options.auth } : {}) })) as NodeJS.ReadableStream & {
          destroy?: () => void;
        };
        controller.signal.addEventListener('abort', () => stream.destroy?.(), { once: true });
        const tracker = new PullProgressTracker();
        await new Promise<void>((resolve, reject) => {
          stream.once('close', () => (controller.signal.aborted ? reject(new Error('aborted')) : undefined));
          this.docker.modem.followProgress(
            stream,
            (err: Error | null, events: { error?: string }[]) => {
              const failed = err ?? (events?.find((e) => e.error) ? new Error(events.find((e) => e.error)!.error) : undefined);
              return failed ? reject(failed) : resolve();
            },
            (event: { id?: string; status?: string; error?: string; progressDetail?: { current?: number; total?: number } }) => {
              armWatchdog();
              if (event.error) return;
              onProgress(tracker.update(event));
            },
          );
        });
      });
    } catch (err) {
      if (stalled) throw new InfrastructureError(`docker: pull ${image}: no progress for ${Math.round(options.stallMs / 1000)}s (registry stalled?)`);
      throw err;
    } finally {
      clearTimeout(watchdog);
      options.signal?.removeEventListener('abort', abort);
    }
  }

  /** Creates the container of one replica (not started), under `name` (the replica's, unless given). */
  async create(replica: ReplicaSpec, name = replica.name): Promise<string> {
    const spec = replica.container;
    const exposed: Record<string, object> = {};
    const bindings: Record<string, { HostIp?: string; HostPort: string }[]> = {};
    for (const port of spec.ports) {
      const key = `${port.container_port}/${port.protocol}`;
      exposed[key] = {};
      (bindings[key] ??= []).push({ HostIp: port.host_ip ?? '', HostPort: String(port.host_port) });
    }
    const hc = spec.healthcheck;
    const mounts = await this.secretMounts(spec);
    const created = await this.wrap(`create ${name}`, () =>
      this.docker.createContainer({
        name,
        Image: spec.image,
        Cmd: spec.command,
        Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
        ExposedPorts: exposed,
        Labels: {
          ...spec.labels,
          [LABEL.cluster]: this.cluster,
          [LABEL.node]: this.nodeId,
          [LABEL.service]: replica.service,
          [LABEL.replica]: String(replica.replica),
          [LABEL.specHash]: replica.spec_hash,
        },
        Healthcheck: hc && {
          Test: hc.test,
          Interval: hc.interval_ms * 1e6,
          Timeout: hc.timeout_ms * 1e6,
          Retries: hc.retries,
          StartPeriod: hc.start_period_ms * 1e6,
        },
        // `docker stop` by hand, or by `otto cluster stop --down` on a node, then honours them too.
        StopSignal: spec.stop_signal,
        StopTimeout: spec.stop_grace_ms === undefined ? undefined : Math.ceil(spec.stop_grace_ms / 1000),
        HostConfig: {
          PortBindings: bindings,
          Binds: spec.volumes,
          RestartPolicy: { Name: spec.restart === 'no' ? '' : spec.restart },
          NanoCpus: spec.nano_cpus,
          Memory: spec.memory_bytes,
          Init: spec.init,
          Mounts: mounts,
        },
        abortSignal: AbortSignal.timeout(DOCKER_TIMEOUTS.change),
      }),
    );
    return created.id;
  }

  private async secretMounts(spec: ContainerSpec): Promise<Dockerode.MountSettings[] | undefined> {
    if (!spec.secrets?.length) return undefined;
    const fileOf = this.options.secretFile;
    if (!fileOf) throw new InfrastructureError('this agent keeps no secrets (no state folder)');
    // The user the image runs as decides who must be able to read the files (a bind mount shows the host owner and mode).
    const image = await this.wrap(`inspect image ${spec.image}`, () => withDeadline(this.docker.getImage(spec.image).inspect(), DOCKER_TIMEOUTS.quick));
    const user = image.Config?.User ?? '';
    // A bind mount (not `Binds`): a missing source is an error, never an empty folder Docker makes in its place.
    return Promise.all(
      spec.secrets.map(async (ref) => ({ Type: 'bind' as const, Source: await fileOf(ref, user), Target: `${SECRETS_TARGET_DIR}/${ref.name}`, ReadOnly: true })),
    );
  }

  async start(id: string): Promise<void> {
    await this.wrap(`start ${id.slice(0, 12)}`, async () => {
      try {
        await this.docker.getContainer(id).start({ abortSignal: AbortSignal.timeout(DOCKER_TIMEOUTS.change) });
      } catch (err) {
        if (statusCode(err) !== 304) throw err; // already running
      }
    });
  }

  /**
   * Stops a container the way `docker stop` does: its stop signal (StopSignal, SIGTERM by default), then
   * SIGKILL only once the grace period has passed: `graceMs`, else the container's own StopTimeout (set
   * from stop_grace_period when Otto created it), else Docker's 10 s. Already stopped or gone is fine.
   */
  async stop(id: string, graceMs?: number): Promise<void> {
    await this.wrap(`stop ${id.slice(0, 12)}`, async () => {
      const container = this.docker.getContainer(id);
      try {
        const grace = graceMs ?? (await this.ownGraceMs(container));
        await container.stop({ t: Math.ceil(grace / 1000), abortSignal: AbortSignal.timeout(grace + DOCKER_TIMEOUTS.stopMargin) });
      } catch (err) {
        const code = statusCode(err);
        if (code !== 304 && code !== 404) throw err;
      }
    });
  }

  private async ownGraceMs(container: Dockerode.Container): Promise<number> {
    const info = await container.inspect({ abortSignal: AbortSignal.timeout(DOCKER_TIMEOUTS.quick) });
    const seconds = (info.Config as { StopTimeout?: number }).StopTimeout;
    return typeof seconds === 'number' && seconds >= 0 ? seconds * 1000 : DEFAULT_STOP_GRACE_MS;
  }

  /**
   * Stops gracefully, then removes. If the stop fails (engine hung), the container is left as it is: a
   * container is stopped gracefully or not at all, never killed because Otto lost patience.
   */
  async stopAndRemove(id: string, graceMs?: number): Promise<void> {
    await this.stop(id, graceMs);
    await this.removeStopped(id);
  }

  /** Removes a container that is already stopped (force only covers a race with a restart policy). */
  async removeStopped(id: string): Promise<void> {
    await this.wrap(`remove ${id.slice(0, 12)}`, async () => {
      try {
        await this.docker.getContainer(id).remove({ force: true, abortSignal: AbortSignal.timeout(DOCKER_TIMEOUTS.change) });
      } catch (err) {
        if (statusCode(err) !== 404) throw err;
      }
    });
  }

  async rename(id: string, name: string): Promise<void> {
    await this.wrap(`rename ${id.slice(0, 12)} to ${name}`, () =>
      this.docker.getContainer(id).rename({ name, abortSignal: AbortSignal.timeout(DOCKER_TIMEOUTS.change) }),
    );
  }

  /** State and health of one container, or undefined when it is gone. */
  async inspectState(id: string): Promise<{ running: boolean; health: ReplicaState['health']; exitCode: number } | undefined> {
    try {
      const info = await this.docker.getContainer(id).inspect({ abortSignal: AbortSignal.timeout(DOCKER_TIMEOUTS.quick) });
      const health = info.State.Health?.Status;
      return {
        running: info.State.Running,
        health: health === 'healthy' || health === 'unhealthy' || health === 'starting' ? health : 'none',
        exitCode: info.State.ExitCode,
      };
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      throw new InfrastructureError(`docker: inspect ${id.slice(0, 12)}: ${errorMessage(err)}`);
    }
  }

  /** The main process pid of a running container (0 when not running); metrics read its /proc entries. */
  async pid(id: string): Promise<number> {
    const info = await this.wrap(`inspect ${id.slice(0, 12)}`, () =>
      this.docker.getContainer(id).inspect({ abortSignal: AbortSignal.timeout(DOCKER_TIMEOUTS.quick) }),
    );
    return info.State.Pid ?? 0;
  }

  private async wrap<T>(what: string, action: () => Promise<T>): Promise<T> {
    try {
      return await action();
    } catch (err) {
      if (err instanceof InfrastructureError) throw err;
      const timedOut = (err as Error).name === 'TimeoutError' || (err as Error).name === 'AbortError';
      const raw = timedOut ? 'no answer from the Docker engine in time' : ((err as { json?: { message?: string } }).json?.message ?? errorMessage(err));
      // docker-modem prefixes the engine's message with its HTTP status: the engine's (the registry's) words say it all.
      const reason = raw.replace(/^\(HTTP code \d+\) [\w ]+ - /, '');
      throw new InfrastructureError(`docker: ${what}: ${reason.trim()}`, 'is the Docker engine running? try `docker info`', {
        cause: err,
      });
    }
  }
}
