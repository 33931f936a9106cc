/**
 * The dashboard with a fleet: a real control plane (embedded broker) with 3,000 nodes, 2,960 of them
 * simulated agents (test/support/sim-fleet) and 40 never started (unreachable), in a real headless Chromium.
 * The page must load and count the nodes by state, build only a page of cards, page through them, find a
 * node by search (its card then gets its live metrics: the stream carries the page's nodes), filter by
 * label and by state. The screenshot is kept in test-artifacts/dashboard-fleet.png.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PAGE_SIZE } from '../src/ui/node-list.js';
import { waitFor } from './support/cli.js';
import { createCluster, startSimulated, type TestCluster } from './support/cluster.js';
import { SimFleet } from './support/sim-fleet/sim-fleet.js';

const CHROMIUM = process.env.OTTO_CHROMIUM ?? '/usr/bin/chromium';
if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium (or set OTTO_CHROMIUM)`);
const artifacts = join(dirname(fileURLToPath(import.meta.url)), '..', 'test-artifacts');

const NODES = 3_000;
const SILENT = 40;
const ids = Array.from({ length: NODES }, (_, i) => `n${String(i + 1).padStart(4, '0')}`);
/** Every 75th node has no agent: 40 unreachable, spread over the pages. */
const silent = new Set(ids.filter((_, i) => i % 75 === 74));
const zoneOf = (i: number) => (i < 1_000 ? 'garage' : 'attic');

const config = `metrics:
  interval: 5s
control:
  interval: 2s
nodes:
${ids.map((id, i) => `  - { id: ${id}, host: 127.0.0.1, labels: { zone: ${zoneOf(i)}, rack: r${i % 30} } }`).join('\n')}
services:
  - { name: web, image: otto-test/busybox, command: sleep 86400, replicas: 100 }
`;

describe(`the dashboard with a simulated fleet of ${NODES.toLocaleString('en')} nodes`, () => {
  let c: TestCluster;
  let fleet: SimFleet;
  let token: string;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];
  const streams: string[] = [];

  const cardIds = () => page.locator('#nodes article.card.node').evaluateAll((cards) => cards.map((card) => (card as HTMLElement).dataset.node!));
  const countText = (state: string) => page.textContent(`#node-summary [data-count="${state}"]`);

  beforeAll(async () => {
    mkdirSync(artifacts, { recursive: true });
    expect(silent.size).toBe(SILENT);
    c = await createCluster('dashfleet', config);
    const started = await startSimulated(c);
    token = started.token;
    fleet = new SimFleet({
      host: '127.0.0.1',
      port: c.mqttPort,
      cluster: c.name,
      intervalMs: 5_000,
      nodes: ids.filter((id) => !silent.has(id)).map((id) => ({ id, password: started.passwordOf(id) })),
    });
    fleet.start();
    await waitFor('the fleet online', async () => fleet.snapshot().connected === NODES - SILENT, 90_000, 500);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-dev-shm-usage'] });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('request', (request) => {
      if (request.url().includes('/api/v1/stream')) streams.push(request.url());
    });
  }, 180_000);

  afterAll(async () => {
    if (page) await page.screenshot({ path: join(artifacts, 'dashboard-fleet.png') }).catch(() => undefined);
    await browser?.close();
    fleet?.stop();
    // Simulated agents create no container: stopping the control plane is all there is to clean.
    await c?.run('cluster', 'stop');
  }, 60_000);

  it('loads with the nodes counted by state and one page of cards', async () => {
    const started = Date.now();
    await page.goto(`http://127.0.0.1:${c.httpPort}/#token=${token}`);
    await expect.poll(() => countText('total'), { timeout: 30_000 }).toBe('3,000 nodes');
    await expect.poll(() => countText('online'), { timeout: 30_000 }).toBe(`${(NODES - SILENT).toLocaleString('en')} online`);
    expect(await countText('unreachable')).toBe(`${SILENT} unreachable`);
    expect(await countText('lost')).toBe('0 lost');
    const loadedMs = Date.now() - started;
    expect(loadedMs).toBeLessThan(15_000);
    expect(await cardIds()).toEqual(ids.slice(0, PAGE_SIZE));
    expect(await page.textContent('#node-pager [data-field="range"]')).toBe(`1–${PAGE_SIZE} of 3,000`);
    expect(await page.textContent('#node-pager [data-field="page"]')).toBe(`page 1 of ${Math.ceil(NODES / PAGE_SIZE)}`);
    // The page's cards get their details (the stream was asked for exactly those nodes).
    await expect.poll(() => page.textContent('[data-node="n0001"] [data-field="cpu"]'), { timeout: 20_000 }).toMatch(/%$/);
    await expect.poll(() => streams.some((url) => new URL(url).searchParams.get('nodes') === ids.slice(0, PAGE_SIZE).join(','))).toBe(true);
    console.log(`dashboard with ${NODES} nodes: counts shown ${loadedMs} ms after navigation`);
  });

  it('pages through the fleet', async () => {
    await page.click('#node-pager [data-action="next-page"]');
    await expect.poll(cardIds).toEqual(ids.slice(PAGE_SIZE, 2 * PAGE_SIZE));
    expect(await page.textContent('#node-pager [data-field="range"]')).toBe(`${PAGE_SIZE + 1}–${2 * PAGE_SIZE} of 3,000`);
    // The first node without an agent is on this page.
    expect(await page.getAttribute('[data-node="n0075"]', 'data-state')).toBe('unreachable');
    await page.click('#node-pager [data-action="last-page"]');
    const lastFirst = Math.floor((NODES - 1) / PAGE_SIZE) * PAGE_SIZE;
    await expect.poll(cardIds).toEqual(ids.slice(lastFirst));
    expect(await page.isDisabled('#node-pager [data-action="next-page"]')).toBe(true);
    await page.click('#node-pager [data-action="previous-page"]');
    await expect.poll(cardIds).toEqual(ids.slice(lastFirst - PAGE_SIZE, lastFirst));
    // Live metrics follow the page: a card of this page gets its CPU.
    await expect.poll(() => page.textContent(`[data-node="${ids[lastFirst - 1]}"] [data-field="cpu"]`), { timeout: 20_000 }).toMatch(/%$/);
    await page.click('#node-pager [data-action="first-page"]');
    await expect.poll(cardIds).toEqual(ids.slice(0, PAGE_SIZE));
    // Only a page of cards ever exists, however far one pages.
    expect(await page.locator('#nodes article').count()).toBe(PAGE_SIZE);
  });

  it('finds a node by search, with its live metrics and containers', async () => {
    await page.fill('#node-search', 'n2345');
    await expect.poll(cardIds).toEqual(['n2345']);
    expect(await page.textContent('#node-pager [data-field="range"]')).toBe('1–1 of 1');
    await expect.poll(() => page.textContent('[data-node="n2345"] [data-field="cpu"]'), { timeout: 20_000 }).toMatch(/%$/);
    expect(await page.textContent('[data-node="n2345"] [data-field="state"]')).toBe('online');
    await page.fill('#node-search', 'no-such-node');
    await expect.poll(() => page.textContent('#node-pager [data-field="range"]')).toBe('no node matches');
    expect(await cardIds()).toEqual([]);
  });

  it('filters by label and by state from the summary', async () => {
    await page.fill('#node-search', 'zone=garage rack=r7');
    const garageR7 = ids.filter((_, i) => zoneOf(i) === 'garage' && i % 30 === 7);
    await expect.poll(() => page.textContent('#node-pager [data-field="range"]')).toBe(`1–${garageR7.length} of ${garageR7.length}`);
    expect(await cardIds()).toEqual(garageR7);
    await page.click('#node-summary [data-count="unreachable"]');
    expect(await page.inputValue('#node-search')).toBe('is:unreachable');
    await expect.poll(cardIds).toEqual([...silent]);
    const states = await page.locator('#nodes article.card.node').evaluateAll((cards) => cards.map((card) => (card as HTMLElement).dataset.state));
    expect(new Set(states)).toEqual(new Set(['unreachable']));
    await page.click('#node-summary [data-count="total"]');
    await expect.poll(cardIds).toEqual(ids.slice(0, PAGE_SIZE));
    expect(pageErrors).toEqual([]);
  });
});
