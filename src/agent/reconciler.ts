/**
 * Makes Docker match the node's desired state, without ever blocking: each pass lists the containers,
 * asks the pure planner (reconcile-plan.ts) what to do, and hands the actions to a small pool of tasks
 * (at most `concurrency` at once, one per replica). A pass never waits for a task: an image pull runs in
 * the background, a graceful stop takes its grace period in its own task, and healing of other replicas
 * goes on meanwhile. A newer desired state drops the tasks not yet started; a task in flight checks before
 * each destructive step that its replica is still wanted as it was.
 */
import type Dockerode from 'dockerode';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { DesiredState, DockerHealth, NodeState, ReplicaSpec } from '../protocol/messages.js';
import { registryHostOf } from '../protocol/secret-names.js';
import type { DockerRuntime, ManagedContainer } from '../runtime/docker.js';
import { Backoff } from './backoff.js';
import { DockerEventsWatcher, type ContainerEvent } from './docker-events.js';
import { ImagePuller } from './image-puller.js';
import { bindsHostPorts, planReconcile, temporaryName, type ReconcileAction } from './reconcile-plan.js';
import type { RegistryAuth } from './registry-auth.js';
import type { SecretStore } from './secret-store.js';
import { leavingContainers, replicaStates } from './state-report.js';
import { isoTime } from '../protocol/iso-time.js';

export interface ReconcilerOptions {
  runtime: DockerRuntime;
  cluster: string;
  nodeId: string;
  log: Logger;
  /** Docker actions at once (creates, stops, starts). */
  concurrency?: number;
  /** A pull with no progress for this long is given up and retried. */
  pullStallMs?: number;
  /** Receives the node's state after every pass and whenever a pull moves. */
  report: (state: NodeState) => void;
  /** The node's secrets: a replica waits for the values its spec names. */
  secrets?: SecretStore;
  /** Credentials of image pulls. */
  registryAuth?: RegistryAuth;
}

interface Task {
  /** Replica names and container ids it works on: no other task takes them meanwhile. */
  keys: string[];
  removal: boolean;
  describe: string;
  run: () => Promise<void>;
  /** Where a failure is remembered for backoff. */
  onError: (error: string) => void;
}

const failureKey = (replica: ReplicaSpec) => `${replica.name}@${replica.spec_hash}`;
const POLL_MS = 250;
/** Secret files no replica needs are looked for at most this often. */
const PRUNE_SECRETS_MS = 30_000;
/** Without a healthcheck, a start-first replacement is ready once it has kept running this long. */
const START_FIRST_SETTLE_MS = 1_000;

export class Reconciler {
  private desired?: DesiredState;
  private listing: Dockerode.ContainerInfo[] = [];
  private listedAt = 0;
  private dockerHealth: DockerHealth = { reachable: false, error: 'not checked yet' };
  private readonly queue: Task[] = [];
  private running = 0;
  private runningRemovals = 0;
  private readonly busy = new Set<string>();
  private readonly failures = new Backoff(1_000, 300_000);
  private readonly removalFailures = new Backoff(5_000, 300_000);
  /** Containers this agent is stopping: their `stop` event is not someone else's. */
  private readonly ownStops = new Set<string>();
  private readonly stoppedByHand = new Set<string>();
  private readonly puller: ImagePuller;
  private readonly events: DockerEventsWatcher;
  private passing?: Promise<void>;
  private passAgain = false;
  private reportTimer?: NodeJS.Timeout;
  private eventTimer?: NodeJS.Timeout;
  private stopped = false;
  private readonly concurrency: number;
  private secretsPrunedAt = 0;

  constructor(private readonly options: ReconcilerOptions) {
    this.concurrency = options.concurrency ?? 4;
    this.puller = new ImagePuller(options.runtime, {
      stallMs: options.pullStallMs ?? 300_000,
      log: options.log,
      onChange: (_image, done) => (done ? void this.requestPass() : this.reportSoon()),
      authFor: options.registryAuth && ((image) => options.registryAuth!.forImage(image)),
    });
    this.events = new DockerEventsWatcher(options.runtime, { cluster: options.cluster, node: options.nodeId }, (event) => this.onDockerEvent(event));
  }

  get docker(): DockerHealth {
    return this.dockerHealth;
  }

  get desiredState(): DesiredState | undefined {
    return this.desired;
  }

  get revision(): number {
    return this.desired?.revision ?? -1;
  }

  /** The container list of the last pass and when it was read (metrics reuse it while it is fresh). */
  latestListing(): { list: Dockerode.ContainerInfo[]; at: number; reachable: boolean } {
    return { list: this.listing, at: this.listedAt, reachable: this.dockerHealth.reachable };
  }

  /** A new desired state: tasks not started yet belong to the old one and are dropped. */
  setDesired(desired: DesiredState): void {
    this.desired = desired;
    for (const task of this.queue.splice(0)) for (const key of task.keys) this.busy.delete(key);
    void this.requestPass();
  }

  /** Secrets or credentials arrived: replicas waiting for them go ahead; failed pulls from those registries try again now. */
  secretsArrived(registryHosts: string[]): void {
    if (registryHosts.length > 0) this.puller.retryNow((image) => registryHosts.includes(registryHostOf(image)));
    void this.requestPass();
  }

  /** Why a replica cannot get a container at its spec yet: secrets the control plane has not sent (yet). */
  private waitingReason(replica: ReplicaSpec): string | undefined {
    const missing = (replica.container.secrets ?? []).filter((ref) => !this.options.secrets?.has(ref)).map((ref) => ref.name);
    if (missing.length === 0) return undefined;
    return `waiting for secret${missing.length > 1 ? 's' : ''} ${missing.join(', ')} from the control plane (not on this node yet)`;
  }

  /** Secret files and credentials nothing needs any more are removed, now and then. */
  private pruneSecrets(list: Dockerode.ContainerInfo[]): void {
    const { secrets } = this.options;
    if (!secrets || !this.desired || Date.now() - this.secretsPrunedAt < PRUNE_SECRETS_MS) return;
    this.secretsPrunedAt = Date.now();
    const mounted = new Set(list.flatMap((c) => (c.Mounts ?? []).map((m) => m.Source)));
    void secrets.prune(this.desired, mounted).catch((err) => this.options.log.warn({ err: errorMessage(err) }, 'cannot remove unused secrets'));
  }

  /** One pass at a time; a request during a pass makes exactly one more. */
  requestPass(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.passing) {
      this.passAgain = true;
      return this.passing;
    }
    this.passing = (async () => {
      do {
        this.passAgain = false;
        await this.pass().catch((err) => this.options.log.error({ err: errorMessage(err) }, 'reconcile pass failed'));
      } while (this.passAgain && !this.stopped);
    })().finally(() => (this.passing = undefined));
    return this.passing;
  }

  /** Stops planning; tasks in flight get `waitMs` to finish (a stop under way goes on inside Docker anyway). */
  async stop(waitMs = 5_000): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reportTimer);
    clearTimeout(this.eventTimer);
    this.events.close();
    this.puller.stopAll();
    this.queue.splice(0);
    await this.passing;
    const deadline = Date.now() + waitMs;
    while (this.running > 0 && Date.now() < deadline) await sleep(50);
  }

  private async pass(): Promise<void> {
    const { runtime, log } = this.options;
    let list: Dockerode.ContainerInfo[];
    try {
      list = await runtime.listAll();
    } catch (err) {
      if (this.dockerHealth.reachable) log.error({ err: errorMessage(err) }, 'Docker unreachable; containers left as they are, retrying');
      this.dockerHealth = { reachable: false, error: errorMessage(err) };
      this.report();
      return;
    }
    if (!this.dockerHealth.reachable) {
      this.dockerHealth = await runtime.health();
      if (this.dockerHealth.reachable) log.info({ version: this.dockerHealth.version }, 'Docker reachable');
    }
    this.events.ensure();
    this.listing = list;
    this.listedAt = Date.now();
    const actual = runtime.managedOf(list);
    for (const id of this.stoppedByHand) if (!actual.some((c) => c.id === id)) this.stoppedByHand.delete(id);
    // No desired state yet (first start, or a lost file): touch nothing until the control plane speaks.
    if (this.desired) {
      const waitingForImage = (image: string) => this.waitingForImage(image);
      const blocked = (replica: ReplicaSpec) => this.waitingReason(replica) !== undefined;
      this.schedule(planReconcile(this.desired.replicas, actual, { busy: this.busy, stoppedByHand: this.stoppedByHand, waitingForImage, blocked }));
      this.pruneSecrets(list);
    }
    this.report(actual);
  }

  private schedule(plan: ReconcileAction[]): void {
    const desired = this.desired!;
    let removalsAhead = this.runningRemovals + this.queue.filter((t) => t.removal).length;
    for (const action of plan) {
      if (action.kind === 'remove') {
        if (!this.removalFailures.canTry(action.container.id)) continue;
        removalsAhead++;
        this.enqueue(this.removeTask(action.container, action.reason));
        continue;
      }
      if (!this.failures.canTry(failureKey(action.replica))) continue;
      // A new container that binds host ports waits until the removals that free them are done.
      if (bindsHostPorts(action) && removalsAhead > 0) continue;
      this.enqueue(this.taskFor(action));
    }
    const wanted = new Set(desired.replicas.map(failureKey));
    this.failures.prune((key) => wanted.has(key));
    this.puller.prune(new Set(desired.replicas.map((r) => r.container.image)));
  }

  private enqueue(task: Task): void {
    if (task.keys.some((key) => this.busy.has(key))) return;
    for (const key of task.keys) this.busy.add(key);
    this.queue.push(task);
    this.drain();
  }

  private drain(): void {
    while (this.running < this.concurrency && this.queue.length > 0 && !this.stopped) {
      const task = this.queue.shift()!;
      this.running++;
      if (task.removal) this.runningRemovals++;
      void task
        .run()
        .catch((err) => {
          const error = errorMessage(err);
          this.options.log.error({ task: task.describe, err: error }, 'reconcile action failed; retrying with backoff');
          task.onError(error);
        })
        .finally(() => {
          this.running--;
          if (task.removal) this.runningRemovals--;
          for (const key of task.keys) this.busy.delete(key);
          this.drain();
          void this.requestPass();
        });
    }
  }

  /** True while the latest desired state still wants this replica at this spec. */
  private stillWanted(replica: ReplicaSpec): boolean {
    return this.desired?.replicas.some((r) => r.name === replica.name && r.spec_hash === replica.spec_hash) ?? false;
  }

  /** A pull of the image is under way, or failed and waits for its retry: its end (or the periodic pass) plans again. */
  private waitingForImage(image: string): boolean {
    const status = this.puller.status(image);
    return status?.state === 'pulling' || (status?.state === 'failed' && Date.now() < status.retryAt);
  }

  /** The image is here; if not, a background pull starts and the replica waits for its end. */
  private async imageReady(replica: ReplicaSpec): Promise<boolean> {
    const image = replica.container.image;
    if (this.puller.status(image)?.state === 'pulling') return false;
    if (await this.options.runtime.hasImage(image)) return true;
    const status = this.puller.status(image);
    if (status?.state === 'failed' && Date.now() < status.retryAt) return false;
    this.puller.ensure(image);
    return false;
  }

  private taskFor(action: Exclude<ReconcileAction, { kind: 'remove' }>): Task {
    const { runtime, log } = this.options;
    const { replica } = action;
    const onError = (error: string) => this.failures.failed(failureKey(replica), error);
    const base = { removal: false, onError };
    switch (action.kind) {
      case 'create':
        return {
          ...base,
          keys: [replica.name],
          describe: `create ${replica.name}`,
          run: async () => {
            if (!(await this.imageReady(replica)) || !this.stillWanted(replica)) return;
            log.info({ container: replica.name }, 'creating container');
            await runtime.start(await this.create(replica));
            this.failures.succeeded(failureKey(replica));
          },
        };
      case 'start':
        return {
          ...base,
          keys: [replica.name, action.containerId],
          describe: `start ${replica.name}`,
          run: async () => {
            log.info({ container: replica.name }, 'starting stopped container');
            await runtime.start(action.containerId);
            this.failures.succeeded(failureKey(replica));
          },
        };
      case 'rename':
        return {
          ...base,
          keys: [replica.name, action.containerId],
          describe: `rename ${replica.name}`,
          run: () => runtime.rename(action.containerId, replica.name),
        };
      case 'replace':
        return {
          ...base,
          keys: [replica.name, action.old.id, ...(action.next ? [action.next.id] : [])],
          describe: `${action.order} update of ${replica.name}`,
          run: () => (action.order === 'start-first' ? this.replaceStartFirst(replica, action.old, action.next) : this.replaceStopFirst(replica, action.old)),
        };
    }
  }

  private removeTask(container: ManagedContainer, reason: string): Task {
    return {
      keys: [container.id, container.name],
      removal: true,
      describe: `remove ${container.name}`,
      onError: (error) => this.removalFailures.failed(container.id, error),
      run: async () => {
        this.options.log.info({ container: container.name, reason }, 'stopping and removing container');
        await this.stopGracefully(container.id);
        this.removalFailures.succeeded(container.id);
      },
    };
  }

  /** The old container stops (gracefully) only once the new image is here; then the new one starts. */
  private async replaceStopFirst(replica: ReplicaSpec, old: ManagedContainer): Promise<void> {
    const { runtime, log } = this.options;
    if (!(await this.imageReady(replica)) || !this.stillWanted(replica)) return;
    log.info({ container: replica.name, spec: replica.spec_hash }, 'spec changed: replacing container (stop-first)');
    await this.stopGracefully(old.id);
    if (!this.stillWanted(replica)) return;
    await runtime.start(await this.create(replica));
    this.failures.succeeded(failureKey(replica));
  }

  /**
   * Creates the replica's container under its name; if a container this node does not manage holds that
   * name (a user's own, or another node's on a shared engine), under `{name}.{node}` instead.
   */
  private async create(replica: ReplicaSpec): Promise<string> {
    try {
      return await this.options.runtime.create(replica);
    } catch (err) {
      if ((err as { cause?: { statusCode?: number } }).cause?.statusCode !== 409) throw err;
      const name = `${replica.name}.${this.options.nodeId}`;
      this.options.log.warn({ container: replica.name, instead: name }, 'the name is taken by a container this node does not manage; using another');
      return this.options.runtime.create(replica, name);
    }
  }

  /** The new container runs and is ready before the old one stops; if it never gets ready, the old one stays. */
  private async replaceStartFirst(replica: ReplicaSpec, old: ManagedContainer, next?: ManagedContainer): Promise<void> {
    const { runtime, log } = this.options;
    if (!(await this.imageReady(replica)) || !this.stillWanted(replica)) return;
    log.info({ container: replica.name, spec: replica.spec_hash }, 'spec changed: replacing container (start-first)');
    const nextId = next?.id ?? (await runtime.create(replica, temporaryName(replica)));
    await runtime.start(nextId);
    const problem = await this.waitReady(nextId, replica);
    if (problem) {
      await this.stopGracefully(nextId);
      throw new Error(`update failed, the old container keeps serving: the new one ${problem}`);
    }
    if (!this.stillWanted(replica)) return;
    await this.stopGracefully(old.id);
    await runtime.rename(nextId, replica.name);
    this.failures.succeeded(failureKey(replica));
  }

  /** Undefined once the container is ready (healthy, or running for a moment without a healthcheck); else why not. */
  private async waitReady(id: string, replica: ReplicaSpec): Promise<string | undefined> {
    const hc = replica.container.healthcheck;
    const budgetMs = hc ? hc.start_period_ms + (hc.retries + 1) * (hc.interval_ms + hc.timeout_ms) + 10_000 : START_FIRST_SETTLE_MS + 10_000;
    const deadline = Date.now() + budgetMs;
    let runningSince: number | undefined;
    while (Date.now() < deadline && !this.stopped) {
      const state = await this.options.runtime.inspectState(id);
      if (!state) return 'disappeared';
      if (!state.running) return `exited (code ${state.exitCode})`;
      if (hc) {
        if (state.health === 'healthy') return undefined;
        if (state.health === 'unhealthy') return 'is unhealthy';
      } else {
        runningSince ??= Date.now();
        if (Date.now() - runningSince >= START_FIRST_SETTLE_MS) return undefined;
      }
      await sleep(POLL_MS);
    }
    return this.stopped ? 'was interrupted: the agent is stopping' : `did not become ${hc ? 'healthy' : 'ready'} within ${Math.round(budgetMs / 1000)}s`;
  }

  private async stopGracefully(id: string): Promise<void> {
    this.ownStops.add(id);
    try {
      await this.options.runtime.stopAndRemove(id);
    } finally {
      // The `stop` event may arrive after the call returns.
      setTimeout(() => this.ownStops.delete(id), 10_000).unref();
    }
  }

  private onDockerEvent(event: ContainerEvent): void {
    if (event.action === 'stop' && !this.ownStops.has(event.id)) this.stoppedByHand.add(event.id);
    if (event.action === 'start') this.stoppedByHand.delete(event.id);
    clearTimeout(this.eventTimer);
    this.eventTimer = setTimeout(() => void this.requestPass(), 300);
  }

  /** A pull moved: publish its progress, at most once a second, without listing Docker again. */
  private reportSoon(): void {
    if (this.reportTimer || this.stopped) return;
    this.reportTimer = setTimeout(() => {
      this.reportTimer = undefined;
      this.report();
    }, 1_000);
  }

  private report(actual = this.options.runtime.managedOf(this.listing)): void {
    const replicas = replicaStates(this.desired?.replicas ?? [], actual, {
      pull: (image) => this.puller.status(image),
      failure: (replica) => this.failures.get(failureKey(replica)),
      waiting: (replica) => this.waitingReason(replica),
    });
    const missing = this.desired && this.options.secrets?.missing(this.desired);
    this.options.report({
      node_id: this.options.nodeId,
      timestamp: isoTime(),
      revision: this.revision,
      docker: this.dockerHealth,
      replicas,
      // Without a desired state nothing is on its way out: nothing is touched.
      leaving: this.desired ? leavingContainers(this.desired.replicas, actual) : [],
      // Names and hashes only: the control plane answers with the values, on this node's secrets topic.
      ...(missing?.secrets.length ? { missing_secrets: missing.secrets } : {}),
      ...(missing?.registries.length ? { missing_registries: missing.registries } : {}),
    });
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

