/**
 * The dashboard in a real headless Chromium (Debian's, driven by playwright-core) against a real cluster:
 * asks for the token, shows the node online with a CPU chart drawing, scales a service from the services
 * table (checked in Docker too), and comes back by itself after a control-plane restart, without a reload.
 * The screenshot is kept in test-artifacts/dashboard.png.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_IMAGE, containersOf } from './support/cli.js';
import { startTestCluster, type RunningTestCluster } from './support/http-fixtures.js';

const CHROMIUM = process.env.OTTO_CHROMIUM ?? '/usr/bin/chromium';
// Never skipped: without Chromium the test fails and says how to get it (.ci/run installs it).
if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium (or set OTTO_CHROMIUM)`);
const artifacts = join(dirname(fileURLToPath(import.meta.url)), '..', 'test-artifacts');
const screenshotPath = join(artifacts, 'dashboard.png');

async function screenshot(page: Page, path: string): Promise<void> {
  // A full-page shot of a scrolled page draws the sticky header in the middle.
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path, fullPage: true });
}

describe('the dashboard in headless Chromium', () => {
  let c: RunningTestCluster;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  const running = async (service: string) => (await containersOf(c.cluster)).filter((x) => x.Labels['otto.service'] === service && x.State === 'running');

  beforeAll(async () => {
    mkdirSync(artifacts, { recursive: true });
    c = await startTestCluster({
      prefix: 'dash',
      services: `  - name: worker
    image: ${TEST_IMAGE}
    node: local
    command: sh -c 'while true; do sleep 1; done'
    init: true
`,
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-dev-shm-usage'],
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('requestfailed', (request) => {
      // Everything the page loads comes from the control plane: no CDN.
      if (!request.url().startsWith(c.apiUrl)) pageErrors.push(`request outside the control plane: ${request.url()}`);
    });
  });

  afterAll(async () => {
    // The page as the run left it (after a failure too); dashboard.png is taken once the scale shows.
    if (page) await screenshot(page, join(artifacts, 'dashboard-last.png')).catch(() => undefined);
    await browser?.close();
    await c?.destroy();
  });

  it('asks for the token once, and keeps it', async () => {
    const outside: string[] = [];
    page.on('request', (request) => {
      if (!request.url().startsWith(c.apiUrl) && !request.url().startsWith('data:')) outside.push(request.url());
    });
    await page.goto(`${c.apiUrl}/`);
    await page.locator('#token-input').waitFor({ state: 'visible' });
    await page.fill('#token-input', 'not-the-token');
    await page.click('#token-form button[type=submit]');
    await expect.poll(() => page.textContent('#token-error')).toContain('refused');
    await page.fill('#token-input', c.token);
    await page.click('#token-form button[type=submit]');
    await page.locator('#dashboard').waitFor({ state: 'visible' });
    expect(await page.evaluate(() => localStorage.getItem('otto.token'))).toBe(c.token);
    await page.reload();
    await page.locator('#dashboard').waitFor({ state: 'visible' });
    expect(await page.locator('#token-panel').isHidden()).toBe(true);
    expect(await page.textContent('#cluster-name')).toBe(c.cluster);
    expect(outside).toEqual([]);
  });

  it('shows the node online and its CPU chart drawing live', async () => {
    const card = page.locator('[data-node="local"]');
    await card.and(page.locator('[data-online="true"]')).waitFor({ timeout: 30_000 });
    await expect.poll(() => page.textContent('#badge-nodes')).toBe('nodes 1/1 online');
    await expect.poll(() => page.textContent('#badge-connection')).toBe('live');
    const chart = card.locator('.chart[data-metric="cpu"]');
    const before = Number(await chart.getAttribute('data-points'));
    await expect.poll(async () => Number(await chart.getAttribute('data-points')), { timeout: 10_000 }).toBeGreaterThan(Math.max(1, before));
    // The line is drawn: the canvas holds pixels of the CPU series' colour (#2563eb).
    const drawn = await chart.evaluate((element) => {
      const canvas = element.querySelector('canvas')!;
      const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
      let count = 0;
      for (let i = 0; i < data.length; i += 4) if (Math.abs(data[i]! - 37) < 20 && Math.abs(data[i + 1]! - 99) < 20 && Math.abs(data[i + 2]! - 235) < 20 && data[i + 3]! > 200) count++;
      return count;
    });
    expect(drawn).toBeGreaterThan(20);
    expect(await card.locator('[data-field="cpu"]').textContent()).toMatch(/%$/);
    await expect.poll(() => card.locator('[data-field="network"]').textContent()).toMatch(/\/s/);
    await expect.poll(() => card.locator(`tr[data-container="${c.cluster}-worker-1"]`).count(), { timeout: 15_000 }).toBe(1);
  });

  it('lists the services and their events', async () => {
    const row = page.locator('tr[data-service="worker"]');
    await expect.poll(() => row.locator('[data-field="running"]').textContent(), { timeout: 30_000 }).toBe('1');
    expect(await row.locator('[data-field="desired"]').textContent()).toBe('1');
    expect(await row.locator('[data-field="nodes"]').textContent()).toBe('local');
    await expect.poll(() => page.locator('#events li').count()).toBeGreaterThan(0);
  });

  // Needs the control plane's scale (ApiHandlers.scale, issue 3): queue, control loop, agent.
  it('scales a service from the table: the page shows the new replica count, and Docker runs it', async () => {
    const row = page.locator('tr[data-service="worker"]');
    await row.locator('input[data-action="replicas"]').fill('2');
    await row.locator('button[data-action="scale"]').click();
    await expect.poll(() => page.textContent('#toast')).toMatch(/scale worker to 2: queued/);
    await expect.poll(() => row.locator('[data-field="desired"]').textContent(), { timeout: 30_000 }).toBe('2');
    await expect.poll(() => row.locator('[data-field="running"]').textContent(), { timeout: 60_000 }).toBe('2');
    expect(await running('worker')).toHaveLength(2);
    await expect.poll(() => page.locator(`[data-node="local"] tr[data-container^="${c.cluster}-worker-"]`).count(), { timeout: 15_000 }).toBe(2);
    await screenshot(page, screenshotPath);
  });

  it('reconnects by itself after a control-plane restart, without a reload', async () => {
    await page.evaluate(() => ((window as unknown as { ottoMarker: number }).ottoMarker = 42));
    const stopped = await c.run('cluster', 'stop');
    expect(stopped.code, stopped.stderr).toBe(0);
    await expect.poll(() => page.textContent('#badge-connection'), { timeout: 10_000 }).toBe('reconnecting…');
    const started = await c.run('cluster', 'start', '--detach');
    expect(started.code, started.stderr).toBe(0);
    await expect.poll(() => page.textContent('#badge-connection'), { timeout: 20_000 }).toBe('live');
    await page.locator('[data-node="local"][data-online="true"]').waitFor({ timeout: 30_000 });
    const chart = page.locator('[data-node="local"] .chart[data-metric="cpu"]');
    const points = Number(await chart.getAttribute('data-points'));
    await expect.poll(async () => Number(await chart.getAttribute('data-points')), { timeout: 10_000 }).toBeGreaterThan(points);
    expect(await page.evaluate(() => (window as unknown as { ottoMarker?: number }).ottoMarker)).toBe(42);
    expect(pageErrors).toEqual([]);
  });
});
