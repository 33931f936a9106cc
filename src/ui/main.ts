/**
 * The Otto dashboard: a header with the cluster name and badges (connection, nodes online, drift, the
 * operation under way with i of N, the scale queue), the nodes (counted by state, searched, a page of cards at
 * a time: node-list-view.ts) with a card each with live CPU and memory charts, disk, network rates and
 * containers, the services table with scale and rolling-restart controls, and the events feed. The status
 * and the live metrics arrive over server-sent events, the metrics and containers of the page's nodes only.
 */
import type { ClusterEvent, ClusterStatus, NodeView, Operation, ServiceView } from '../http/schemas.js';
import type { NodeMetrics } from '../protocol/messages.js';
import { LiveChart } from './charts.js';
import { ApiFailure, LiveConnection, api, forgetToken, saveToken, storedToken } from './connection.js';
import { ago, bytes, clock, el, percent, rate, setText } from './format.js';
import { clusterNfrBadge, nodeChartViolations, serviceNfrBadge } from './nfr.js';
import { NodeListView } from './node-list-view.js';
import './style.css';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const MAX_EVENTS = 200;
const SEED_WINDOW_MS = 5 * 60_000;

let token: string | undefined;
let connection: LiveConnection | undefined;
let status: ClusterStatus | undefined;
const rows = new Map<string, ServiceRow>();
let events: ClusterEvent[] = [];

// ---- node cards ---------------------------------------------------------------------------------

class NodeCard {
  readonly root: HTMLElement;
  private readonly cpu: LiveChart;
  private readonly memory: LiveChart;
  private readonly fields: Record<string, HTMLElement> = {};
  private readonly containers: HTMLTableSectionElement;
  /** Containers on the node's Docker that Otto does not manage, folded away. */
  private readonly otherContainers: HTMLTableSectionElement;
  private readonly others: HTMLDetailsElement;
  private lastNet?: { t: number; sent: number; recv: number };
  private rates?: { sent: number; recv: number };

  constructor(readonly id: string) {
    const field = (name: string, className = '') => (this.fields[name] = el('span', { class: className, 'data-field': name }));
    const cpuChart = el('div', { class: 'chart', 'data-metric': 'cpu' });
    const memoryChart = el('div', { class: 'chart', 'data-metric': 'memory' });
    this.containers = el('tbody');
    this.otherContainers = el('tbody');
    this.root = el(
      'article',
      { class: 'card node', 'data-node': id },
      el('header', { class: 'card-head' }, field('dot', 'dot'), el('h3', {}, id), field('state', 'state'), field('host', 'muted')),
      el('p', { class: 'meta' }, field('agent'), field('docker')),
      el('div', { class: 'metric-head' }, el('span', {}, 'CPU'), field('cpu', 'value')),
      cpuChart,
      el('div', { class: 'metric-head' }, el('span', {}, 'Memory'), field('memory', 'value')),
      memoryChart,
      el('div', { class: 'metric-head' }, el('span', {}, 'Disk'), field('disk', 'value')),
      el('div', { class: 'bar' }, field('disk-bar', 'bar-fill')),
      el('div', { class: 'metric-head' }, el('span', {}, 'Network'), field('network', 'value')),
      el('details', { class: 'containers', open: '' }, el('summary', {}, field('containers-count')), containerTable(this.containers)),
      (this.others = el('details', { class: 'containers' }, el('summary', {}, field('others-count')), containerTable(this.otherContainers))),
    );
    $('nodes').append(this.root);
    this.cpu = new LiveChart(cpuChart, 'CPU %', '#2563eb');
    this.memory = new LiveChart(memoryChart, 'memory %', '#9333ea');
  }

  update(node: NodeView): void {
    this.root.dataset.online = String(node.online);
    this.root.dataset.state = node.state;
    // Unreachable is not gone: its replicas are probably still serving, shown with their last known state.
    const tone = node.state === 'online' ? 'ok' : node.state === 'unreachable' ? 'warn' : 'bad';
    setText(this.fields.dot!, '', `dot ${tone}`);
    setText(this.fields.state!, node.state === 'online' ? 'online' : `${node.state} ${ago(node.unreachable_since).replace(/ ago$/, '')}`, `state ${tone}`);
    setText(this.fields.host!, node.host + (node.local ? ' (local)' : ''));
    setText(this.fields.agent!, node.agent_version ? `agent ${node.agent_version}${node.arch ? ` · ${node.arch}` : ''} · seen ${ago(node.last_seen)}` : `agent not seen (${ago(node.last_seen)})`);
    setText(
      this.fields.docker!,
      node.docker ? (node.docker.reachable ? ` · Docker ${node.docker.version ?? ''}` : ` · Docker unreachable`) : '',
      node.docker && !node.docker.reachable ? 'bad' : '',
    );
    if (node.metrics) this.addSample(node.metrics);
    const managed = node.containers.filter((c) => c.service);
    const others = node.containers.filter((c) => !c.service);
    setText(this.fields['containers-count']!, `${managed.length} Otto container${managed.length === 1 ? '' : 's'}`);
    setText(this.fields['others-count']!, `${others.length} other container${others.length === 1 ? '' : 's'} on this Docker`);
    this.others.hidden = others.length === 0;
    this.containers.replaceChildren(...containerRows(managed));
    this.otherContainers.replaceChildren(...containerRows(others));
  }

  addSample(m: NodeMetrics): void {
    const t = Date.parse(m.timestamp);
    this.cpu.add(t, m.cpu_percent);
    this.memory.add(t, m.memory_percent);
    setText(this.fields.cpu!, percent(m.cpu_percent));
    setText(this.fields.memory!, `${percent(m.memory_percent)} · ${bytes(m.memory_used_mb * 1024 * 1024)} of ${bytes(m.memory_total_mb * 1024 * 1024)}`);
    setText(this.fields.disk!, `${percent(m.disk_percent)} · ${bytes(m.disk_used_gb * 1024 ** 3)} of ${bytes(m.disk_total_gb * 1024 ** 3)}`);
    this.fields['disk-bar']!.style.width = `${Math.min(100, m.disk_percent)}%`;
    this.fields['disk-bar']!.className = `bar-fill${m.disk_percent > 90 ? ' bad' : m.disk_percent > 75 ? ' warn' : ''}`;
    if (this.lastNet && t > this.lastNet.t) {
      const seconds = (t - this.lastNet.t) / 1000;
      // Counters restart with the machine: a negative difference is no rate.
      const sent = m.network_bytes_sent - this.lastNet.sent;
      const recv = m.network_bytes_recv - this.lastNet.recv;
      if (sent >= 0 && recv >= 0) this.rates = { sent: sent / seconds, recv: recv / seconds };
    }
    if (!this.lastNet || t > this.lastNet.t) this.lastNet = { t, sent: m.network_bytes_sent, recv: m.network_bytes_recv };
    setText(this.fields.network!, `↑ ${rate(this.rates?.sent)} · ↓ ${rate(this.rates?.recv)}`);
  }

  /** The CPU and memory series a replica on this node offends (NFR rules on node.cpu_percent / node.memory_percent). */
  markViolations(marks: ReturnType<typeof nodeChartViolations>): void {
    this.cpu.setThreshold(marks.cpu?.threshold, marks.cpu?.rules.join('\n'));
    this.memory.setThreshold(marks.memory?.threshold, marks.memory?.rules.join('\n'));
    this.root.dataset.nfr = marks.cpu || marks.memory ? 'violated' : 'ok';
  }

  remove(): void {
    this.cpu.destroy();
    this.memory.destroy();
    this.root.remove();
  }
}

function containerTable(body: HTMLTableSectionElement): HTMLTableElement {
  return el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'container'), el('th', {}, 'service'), el('th', {}, 'CPU'), el('th', {}, 'memory'))), body);
}

function containerRows(containers: NodeView['containers']): HTMLTableRowElement[] {
  return [...containers]
    .sort((a, b) => a.container_name.localeCompare(b.container_name, undefined, { numeric: true }))
    .map((c) =>
      el(
        'tr',
        { 'data-container': c.container_name },
        el('td', { class: 'mono' }, c.container_name),
        el('td', {}, c.service ? `${c.service}${c.replica ? ` #${c.replica}` : ''}` : '–'),
        el('td', {}, percent(c.cpu_percent)),
        el('td', {}, `${bytes(c.memory_usage_mb * 1024 * 1024)}${c.memory_limit_mb ? ` / ${bytes(c.memory_limit_mb * 1024 * 1024)}` : ''}`),
      ),
    );
}

async function seedCharts(card: NodeCard): Promise<void> {
  if (!token) return;
  try {
    const samples = await api<NodeMetrics[]>(token, `/api/v1/nodes/${encodeURIComponent(card.id)}/metrics?since=${Date.now() - SEED_WINDOW_MS}`);
    for (const sample of samples) card.addSample(sample);
  } catch (err) {
    console.warn(`otto: no metrics history for ${card.id}`, err);
  }
}

// ---- services -----------------------------------------------------------------------------------

class ServiceRow {
  readonly root: HTMLTableRowElement;
  private readonly cells: Record<string, HTMLElement> = {};
  private readonly replicas: HTMLInputElement;
  /** The user typed a count: updates must not overwrite it. */
  private edited = false;

  constructor(readonly name: string) {
    const cell = (field: string, className = '') => (this.cells[field] = el('td', { 'data-field': field, class: className }));
    const pill = (field: string) => el('td', {}, (this.cells[field] = el('span', { 'data-field': field, class: 'pill' })));
    this.replicas = el('input', { type: 'number', min: '0', max: '1000', step: '1', 'data-action': 'replicas', 'aria-label': `replicas of ${name}` });
    this.replicas.addEventListener('input', () => (this.edited = true));
    this.replicas.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') void this.scale();
    });
    const scale = el('button', { type: 'button', 'data-action': 'scale' }, 'Scale');
    scale.addEventListener('click', () => void this.scale());
    const restart = el('button', { type: 'button', class: 'secondary', 'data-action': 'rolling-restart' }, 'Rolling restart');
    restart.addEventListener('click', () => void this.restart());
    const replicaCell = el('td', { class: 'replicas' }, (this.cells.desired = el('span', { 'data-field': 'desired' })), ' / ', (this.cells.running = el('span', { 'data-field': 'running' })));
    this.root = el(
      'tr',
      { 'data-service': name },
      el('td', { class: 'name' }, name),
      cell('image', 'mono muted'),
      replicaCell,
      cell('nodes'),
      pill('state'),
      pill('health'),
      pill('nfr'),
      cell('ports', 'mono'),
      el('td', { class: 'actions' }, this.replicas, scale, restart),
    );
    $<HTMLTableElement>('services').tBodies[0]!.append(this.root);
  }

  update(service: ServiceView): void {
    setText(this.cells.image!, service.image);
    setText(this.cells.desired!, String(service.desired));
    setText(this.cells.running!, service.stale ? `${service.running} (${service.stale} stale)` : String(service.running), service.running === service.desired && !service.stale ? 'ok' : 'warn');
    setText(this.cells.nodes!, service.nodes.join(', ') || '–');
    const pulls = service.replicas.filter((r) => r.pull);
    const pulling = pulls.length ? ` · pulling ${pulls.map((r) => (r.pull!.percent === undefined ? '…' : `${r.pull!.percent}%`)).join(', ')}` : '';
    setText(this.cells.state!, `${service.state}${pulling}${service.hold ? ' · held' : ''}`, `pill ${service.state}`);
    setText(this.cells.health!, service.health, `pill ${service.health}`);
    const nfr = serviceNfrBadge(service);
    setText(this.cells.nfr!, nfr?.text ?? '–', nfr ? `pill ${nfr.tone}` : 'pill muted');
    this.cells.nfr!.title = nfr?.title ?? '';
    setText(this.cells.ports!, service.ports.join(', ') || '–');
    this.cells.state!.title = [...(service.hold ? [service.hold] : []), ...service.errors].join('\n');
    if (!this.edited && document.activeElement !== this.replicas) this.replicas.value = String(service.desired);
  }

  private async scale(): Promise<void> {
    const replicas = Number(this.replicas.value);
    if (!Number.isInteger(replicas) || replicas < 0) return toast(`replicas of ${this.name}: a whole number from 0`, true);
    await act(`scale ${this.name} to ${replicas}`, `/api/v1/services/${encodeURIComponent(this.name)}/scale`, { replicas });
    this.edited = false;
  }

  private async restart(): Promise<void> {
    await act(`rolling restart of ${this.name}`, `/api/v1/services/${encodeURIComponent(this.name)}/restart`, { rolling: true });
  }
}

async function act(what: string, path: string, body: unknown): Promise<void> {
  if (!token) return;
  try {
    const op = await api<Operation>(token, path, { method: 'POST', body });
    toast(`${what}: queued (${op.id})`);
  } catch (err) {
    if (err instanceof ApiFailure && err.status === 401) return askToken('The control plane refused the token.');
    toast(`${what}: ${(err as Error).message}`, true);
  }
}

// ---- header badges ------------------------------------------------------------------------------

function operationText(op: Operation): string {
  const what = op.kind === 'scale' ? `Scaling ${op.service} to ${op.replicas}` : op.kind === 'rolling-restart' ? `Rolling restart ${op.service}` : `Restarting ${op.service}`;
  return op.progress ? `${what} (${op.progress.done} of ${op.progress.total})` : what;
}

function queuedText(op: Operation): string {
  return op.kind === 'scale' ? `${op.service}→${op.replicas}` : `${op.kind} ${op.service}`;
}

function renderHeader(s: ClusterStatus): void {
  setText($('cluster-name'), s.cluster.name);
  document.title = `Otto · ${s.cluster.name}`;
  const online = s.nodes.filter((n) => n.online).length;
  setText($('badge-nodes'), `nodes ${online}/${s.nodes.length} online`, `badge ${online === s.nodes.length ? 'ok' : online === 0 ? 'bad' : 'warn'}`);
  setText(
    $('badge-drift'),
    s.drift.length ? `drift: ${s.drift.map((d) => `${d.service} ${d.running}/${d.desired}`).join(', ')}` : 'no drift',
    `badge ${s.drift.length ? 'warn' : 'ok'}`,
  );
  const nfr = clusterNfrBadge(s);
  setText($('badge-nfr'), nfr.text, `badge ${nfr.tone}`);
  $('badge-nfr').title = nfr.title;
  setText($('badge-operation'), s.operation ? operationText(s.operation) : 'idle', `badge ${s.operation ? 'busy' : 'muted'}`);
  setText($('badge-queue'), s.queue.length ? `queue: ${s.queue.map(queuedText).join(', ')}` : 'queue empty', `badge ${s.queue.length ? 'busy' : 'muted'}`);
  const configError = $('config-error');
  configError.hidden = !s.cluster.config_error;
  setText(configError, s.cluster.config_error ? `otto.yaml was not applied: ${s.cluster.config_error}` : '');
}

function setConnection(state: 'live' | 'lost' | 'connecting'): void {
  setText($('badge-connection'), state === 'live' ? 'live' : state === 'lost' ? 'reconnecting…' : 'connecting…', `badge ${state === 'live' ? 'ok' : state === 'lost' ? 'bad' : 'muted'}`);
}

// ---- events -------------------------------------------------------------------------------------

function eventClass(kind: ClusterEvent['kind']): string {
  if (/offline|lost|died|rejected|drift-found|stopped|failed/.test(kind)) return 'bad';
  if (/unreachable|moved/.test(kind)) return 'warn';
  if (/online|healed|cleared|started|reloaded|released|-ok/.test(kind)) return 'ok';
  return 'muted';
}

function renderEvents(): void {
  $('events').replaceChildren(
    ...[...events]
      .reverse()
      .map((e) =>
        el(
          'li',
          { 'data-event': String(e.id) },
          el('time', { datetime: e.time }, clock(e.time)),
          el('span', { class: `pill ${eventClass(e.kind)}` }, e.kind),
          el('span', { class: 'message' }, e.message),
        ),
      ),
  );
}

function addEvent(event: ClusterEvent): void {
  if (events.some((e) => e.id === event.id && e.time === event.time)) return;
  events.push(event);
  if (events.length > MAX_EVENTS) events = events.slice(-MAX_EVENTS);
  renderEvents();
}

async function loadEvents(): Promise<void> {
  if (!token) return;
  events = (await api<ClusterEvent[]>(token, '/api/v1/events')).slice(-MAX_EVENTS);
  renderEvents();
}

// ---- status -------------------------------------------------------------------------------------

/** The nodes the page shows (what the stream is asked the details of). */
let shownNodes: string[] | undefined;
const nodeList = new NodeListView(
  { cards: $('nodes'), summary: $('node-summary'), search: $<HTMLInputElement>('node-search'), pager: $('node-pager') },
  (id) => {
    const card = new NodeCard(id);
    void seedCharts(card);
    return card;
  },
  (ids) => {
    shownNodes = ids;
    connection?.setNodes(ids);
  },
  (card, node) => {
    card.update(node);
    if (status) card.markViolations(nodeChartViolations(status, node.id));
  },
);

function applyStatus(s: ClusterStatus): void {
  status = s;
  renderHeader(s);
  nodeList.apply(s.nodes);
  const names = new Set(s.services.map((x) => x.name));
  for (const [name, row] of rows) if (!names.has(name)) (row.root.remove(), rows.delete(name));
  for (const service of s.services) {
    let row = rows.get(service.name);
    if (!row) rows.set(service.name, (row = new ServiceRow(service.name)));
    row.update(service);
  }
}

/** An operation changed: show it in the badges at once, before the next status. */
function applyOperation(op: Operation): void {
  if (!status) return;
  const queue = status.queue.filter((q) => q.id !== op.id);
  let operation = status.operation?.id === op.id ? null : status.operation;
  if (op.state === 'queued') queue.push(op);
  else if (op.state === 'running') operation = op;
  status = { ...status, operation, queue };
  renderHeader(status);
}

async function refresh(): Promise<void> {
  if (!token) return;
  // The status comes with the stream (at once when it opens), for the nodes shown: not a whole fleet's here.
  await loadEvents();
}

// ---- token and start ----------------------------------------------------------------------------

let toastTimer: number | undefined;
function toast(message: string, error = false): void {
  const box = $('toast');
  box.textContent = message;
  box.className = `toast${error ? ' error' : ''}`;
  box.hidden = false;
  window.clearTimeout(toastTimer);
  toastTimer = window.setTimeout(() => (box.hidden = true), 6_000);
}

function askToken(message = ''): void {
  connection?.stop();
  connection = undefined;
  token = undefined;
  forgetToken();
  $('dashboard').hidden = true;
  $('forget-token').hidden = true;
  $('token-panel').hidden = false;
  setText($('token-error'), message);
  setConnection('connecting');
  $<HTMLInputElement>('token-input').focus();
}

async function start(candidate: string): Promise<void> {
  token = candidate;
  try {
    await refresh();
  } catch (err) {
    if (err instanceof ApiFailure && err.status === 401) return askToken('The control plane refused that token.');
    toast(`cannot load the cluster: ${(err as Error).message}; retrying`, true);
  }
  saveToken(candidate);
  $('token-panel').hidden = true;
  $('dashboard').hidden = false;
  $('forget-token').hidden = false;
  // No node's details until the first status says which nodes the page shows.
  connection = new LiveConnection(
    candidate,
    {
    onOpen: (reconnected) => {
      setConnection('live');
      // After a control-plane restart the history and the state may have moved on: take them afresh.
      if (reconnected || !status) void refresh().catch(() => undefined);
    },
    onLost: () => setConnection('lost'),
    onUnauthorized: () => askToken('The control plane refused the token.'),
    onEvent: (type, data) => {
      if (type === 'status') applyStatus(data as ClusterStatus);
      else if (type === 'node-metrics') nodeList.card((data as NodeMetrics).node_id)?.addSample(data as NodeMetrics);
      else if (type === 'event') addEvent(data as ClusterEvent);
      else if (type === 'operation') applyOperation(data as Operation);
    },
    },
    shownNodes ?? [],
  );
  connection.start();
}

$('token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const value = $<HTMLInputElement>('token-input').value.trim();
  if (value) void start(value);
});
$('forget-token').addEventListener('click', () => askToken());

const saved = storedToken();
if (saved) void start(saved);
else askToken();
