/**
 * Docker, as the agent needs it: find the containers Otto manages on this node, create them from a
 * ReplicaSpec, pull missing images. Every Docker failure becomes an InfrastructureError.
 */
import Dockerode from 'dockerode';
import { InfrastructureError, errorMessage } from '../errors.js';
import { LABEL } from '../protocol/labels.js';
import type { DockerHealth, ReplicaSpec, ReplicaState } from '../protocol/messages.js';

export function dockerFromUrl(url: string): Dockerode {
  if (url.startsWith('unix://')) return new Dockerode({ socketPath: url.slice('unix://'.length) });
  const parsed = new URL(url.replace(/^tcp:/, 'http:'));
  return new Dockerode({
    host: parsed.hostname,
    port: Number(parsed.port || 2375),
    protocol: parsed.protocol === 'https:' ? 'https' : 'http',
  });
}

export interface ManagedContainer {
  id: string;
  name: string;
  service: string;
  replica: number;
  specHash: string;
  state: ReplicaState['state'];
  health: ReplicaState['health'];
  /** Docker's creation time in seconds; the newest replicas go first on scale-down. */
  created: number;
}

const dockerStates = new Set(['running', 'created', 'restarting', 'exited', 'paused', 'dead', 'removing']);

function healthFromStatus(status: string): ReplicaState['health'] {
  if (status.includes('(healthy)')) return 'healthy';
  if (status.includes('(unhealthy)')) return 'unhealthy';
  if (status.includes('(health: starting)')) return 'starting';
  return 'none';
}

export class DockerRuntime {
  constructor(
    readonly docker: Dockerode,
    private readonly cluster: string,
    private readonly nodeId: string,
  ) {}

  async health(): Promise<DockerHealth> {
    try {
      const version = await this.docker.version();
      return { reachable: true, version: version.Version };
    } catch (err) {
      return { reachable: false, error: errorMessage(err) };
    }
  }

  /** Every container of the engine, running or not: one call serves reconcile and metrics alike. */
  async listAll(): Promise<Dockerode.ContainerInfo[]> {
    return this.wrap('list containers', () => this.docker.listContainers({ all: true }));
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
    }));
  }

  async hasImage(image: string): Promise<boolean> {
    try {
      await this.docker.getImage(image).inspect();
      return true;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return false;
      throw new InfrastructureError(`docker: inspect image ${image}: ${errorMessage(err)}`);
    }
  }

  async pull(image: string): Promise<void> {
    await this.wrap(`pull ${image}`, async () => {
      const stream = await this.docker.pull(image);
      await new Promise<void>((resolve, reject) =>
        this.docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve())),
      );
    });
  }

  /** Creates and starts the container of one replica. */
  async createAndStart(replica: ReplicaSpec): Promise<string> {
    const spec = replica.container;
    const exposed: Record<string, object> = {};
    const bindings: Record<string, { HostIp?: string; HostPort: string }[]> = {};
    for (const port of spec.ports) {
      const key = `${port.container_port}/${port.protocol}`;
      exposed[key] = {};
      (bindings[key] ??= []).push({ HostIp: port.host_ip ?? '', HostPort: String(port.host_port) });
    }
    const hc = spec.healthcheck;
    const created = await this.wrap(`create ${replica.name}`, () =>
      this.docker.createContainer({
        name: replica.name,
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
        HostConfig: {
          PortBindings: bindings,
          Binds: spec.volumes,
          RestartPolicy: { Name: spec.restart === 'no' ? '' : spec.restart },
          NanoCpus: spec.nano_cpus,
          Memory: spec.memory_bytes,
        },
      }),
    );
    await this.start(created.id);
    return created.id;
  }

  async start(id: string): Promise<void> {
    await this.wrap(`start ${id.slice(0, 12)}`, () => this.docker.getContainer(id).start());
  }

  async remove(id: string): Promise<void> {
    await this.wrap(`remove ${id.slice(0, 12)}`, async () => {
      try {
        await this.docker.getContainer(id).remove({ force: true });
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode !== 404) throw err;
      }
    });
  }

  /** The main process pid of a running container (0 when not running); metrics read its /proc entries. */
  async pid(id: string): Promise<number> {
    const info = await this.wrap(`inspect ${id.slice(0, 12)}`, () => this.docker.getContainer(id).inspect());
    return info.State.Pid ?? 0;
  }

  private async wrap<T>(what: string, action: () => Promise<T>): Promise<T> {
    try {
      return await action();
    } catch (err) {
      const reason = (err as { json?: { message?: string } }).json?.message ?? errorMessage(err);
      throw new InfrastructureError(`docker: ${what}: ${reason.trim()}`, 'is the Docker engine running? try `docker info`', {
        cause: err,
      });
    }
  }
}
