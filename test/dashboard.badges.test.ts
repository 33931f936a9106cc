/**
 * The built dashboard in headless Chromium against the real API server, with the control plane replaced
 * by fixed data: the badges (operation under way with i of N, scale queue, drift, nodes online), live
 * updates without a reload, a refused token, and names shown as text, never as HTML.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultUiDir, startApi } from '../src/http/api.js';
import type { Operation } from '../src/http/schemas.js';
import { FakeControlPlane, TOKEN, nodeSample } from './support/http-fixtures.js';

const CHROMIUM = process.env.OTTO_CHROMIUM ?? '/usr/bin/chromium';
// Never skipped: without Chromium the test fails and says how to get it (.ci/run installs it).
if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium (or set OTTO_CHROMIUM)`);

if (!existsSync(join(defaultUiDir, 'index.html'))) throw new Error(`no dashboard build in ${defaultUiDir}: run npm run build`);

describe('the dashboard badges and live updates', () => {
  const fake = new FakeControlPlane();
  let app: FastifyInstance;
  let base: string;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    app = await startApi({ host: '127.0.0.1', port: 0, token: TOKEN, handlers: fake, stream: { statusMs: 500 } });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-dev-shm-usage'] });
    page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
    page.on('pageerror', (err) => pageErrors.push(err.message));
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  it('takes the token from a #token= link, keeps it, and drops it from the address bar', async () => {
    await page.goto(`${base}/#token=${TOKEN}`);
    await page.locator('#dashboard').waitFor({ state: 'visible' });
    expect(new URL(page.url()).hash).toBe('');
    expect(await page.evaluate(() => localStorage.getItem('otto.token'))).toBe(TOKEN);
    await expect.poll(() => page.textContent('#badge-connection')).toBe('live');
  });

  it('shows nodes online x/y and the drift', async () => {
    expect(await page.textContent('#badge-nodes')).toBe('nodes 1/2 online');
    expect(await page.getAttribute('#badge-nodes', 'class')).toContain('warn');
    expect(await page.textContent('#badge-drift')).toBe('drift: web 1/2');
    expect(await page.locator('[data-node="edge-2"]').getAttribute('data-online')).toBe('false');
  });

  it('shows an unreachable node as such, a replica pulling its image with the progress, and a held update', async () => {
    const edge2 = page.locator('[data-node="edge-2"]');
    expect(await edge2.getAttribute('data-state')).toBe('unreachable');
    expect(await edge2.locator('[data-field="state"]').textContent()).toMatch(/^unreachable \d+[smhd]$/);
    fake.pulls.set('worker', 45);
    fake.holds.set('web', 'update to spec revision 2 rolled back: replica fake-web-1 is unhealthy');
    fake.addEvent({ kind: 'node-unreachable', node: 'edge-2', message: 'node edge-2 is unreachable' });
    const state = (service: string) => page.locator(`[data-service="${service}"] [data-field="state"]`);
    await expect.poll(() => state('worker').textContent(), { timeout: 5_000 }).toBe('running · pulling 45%');
    await expect.poll(() => state('web').textContent(), { timeout: 5_000 }).toContain('· held');
    expect(await state('web').getAttribute('title')).toContain('rolled back: replica fake-web-1 is unhealthy');
    fake.pulls.clear();
    fake.holds.clear();
  });

  it('shows the operation under way with i of N, and the scale queue, as they change', async () => {
    expect(await page.textContent('#badge-operation')).toBe('idle');
    expect(await page.textContent('#badge-queue')).toBe('queue empty');
    const running: Operation = { id: 'op-r', kind: 'rolling-restart', service: 'web', state: 'running', requested_at: new Date().toISOString(), progress: { done: 1, total: 3 } };
    fake.ops.push(running);
    fake.scale('web', 5);
    fake.scale('worker', 2);
    fake.emit({ type: 'operation', data: running });
    await expect.poll(() => page.textContent('#badge-operation')).toBe('Rolling restart web (1 of 3)');
    await expect.poll(() => page.textContent('#badge-queue')).toBe('queue: web→5, worker→2');
    running.progress = { done: 2, total: 3 };
    fake.emit({ type: 'operation', data: { ...running } });
    await expect.poll(() => page.textContent('#badge-operation')).toBe('Rolling restart web (2 of 3)');
    running.state = 'succeeded';
    running.finished_at = new Date().toISOString();
    fake.emit({ type: 'operation', data: { ...running } });
    await expect.poll(() => page.textContent('#badge-operation')).toBe('idle');
  });

  it('adds live samples to the chart and live events to the feed, without a reload', async () => {
    const chart = page.locator('[data-node="edge-1"] .chart[data-metric="cpu"]');
    const before = Number(await chart.getAttribute('data-points'));
    for (let i = 1; i <= 3; i++) fake.emit({ type: 'node-metrics', data: nodeSample('edge-1', new Date(Date.now() + i * 1_000), 20 * i) });
    await expect.poll(async () => Number(await chart.getAttribute('data-points'))).toBe(before + 3);
    expect(await page.textContent('[data-node="edge-1"] [data-field="cpu"]')).toBe('60%');
    fake.addEvent({ kind: 'replica-died', service: 'web', replica: 1, message: 'web #1 died <img src=x onerror="window.pwned=1">' });
    await expect.poll(() => page.locator('#events li').first().textContent()).toContain('web #1 died <img');
    expect(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned)).toBeUndefined();
    expect(await page.locator('#events img').count()).toBe(0);
  });

  it('shows an NFR violation: the header count, the service badge with the rule, and the threshold on the offending node chart', async () => {
    const cpuChart = page.locator('[data-node="edge-1"] .chart[data-metric="cpu"]');
    await expect.poll(() => page.textContent('#badge-nfr')).toBe('NFR ok');
    expect(await cpuChart.getAttribute('data-threshold')).toBeNull();
    const rule = 'node.cpu_percent < 85 for 1m';
    fake.violations.set('web', [{ replica: 1, node: 'edge-1', rule, metric: 'node.cpu_percent', threshold: 85, since: new Date().toISOString(), value: 97, failing: true, action: 'migrate' }]);
    await expect.poll(() => page.textContent('#badge-nfr')).toBe('NFR: 1 violation');
    const badge = page.locator('[data-service="web"] [data-field="nfr"]');
    expect(await badge.textContent()).toBe('NFR: 1 violation');
    expect(await badge.getAttribute('title')).toBe(`#1 on edge-1: ${rule} (now 97; migrate)`);
    expect(await cpuChart.getAttribute('data-threshold')).toBe('85');
    expect(await cpuChart.getAttribute('class')).toContain('offending');
    expect(await page.locator('[data-node="edge-1"] .chart[data-metric="memory"]').getAttribute('data-threshold')).toBeNull();
    expect(await page.locator('[data-service="worker"] [data-field="nfr"]').textContent()).toBe('–');
    fake.violations.delete('web');
    await expect.poll(() => page.textContent('#badge-nfr')).toBe('NFR ok');
    expect(await cpuChart.getAttribute('data-threshold')).toBeNull();
    expect(pageErrors).toEqual([]);
  });

  it('asks again for the token when the control plane refuses it', async () => {
    await page.evaluate(() => localStorage.setItem('otto.token', 'stale'));
    await page.reload();
    await page.locator('#token-panel').waitFor({ state: 'visible' });
    expect(await page.textContent('#token-error')).toContain('refused');
    expect(await page.evaluate(() => localStorage.getItem('otto.token'))).toBeNull();
    expect(pageErrors).toEqual([]);
  });
});
