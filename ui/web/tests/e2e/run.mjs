// End-to-end test of `strata ui` with the real engine: run by
// run-e2e.sh, which starts the server and sets STRATA_UI_URL.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch } from './browser.mjs';

const url = process.env.STRATA_UI_URL;
assert.ok(url, 'STRATA_UI_URL is not set: run tests through run-e2e.sh');
const origin = new URL(url).origin;
const token = new URL(url).searchParams.get('token');
const artifacts = join(dirname(fileURLToPath(import.meta.url)), '..', 'artifacts');
mkdirSync(artifacts, { recursive: true });

async function checkAccessControl() {
  const missing = await fetch(`${origin}/api/status`);
  assert.equal(missing.status, 401);
  assert.equal((await missing.json()).code, 'missing_token');
  const foreign = await fetch(`${origin}/api/status?token=${token}`, { headers: { origin: 'http://example.test' } });
  assert.equal(foreign.status, 403);
  assert.equal((await foreign.json()).code, 'forbidden_origin');
  const bad = await fetch(`${origin}/api/projects/open?token=${token}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ path: '/nonexistent/project' }),
  });
  assert.equal(bad.status, 404);
  assert.match((await bad.json()).message, /nonexistent\/project/);
  console.log('ok access control and errors');
}

async function waitForResult(page) {
  await page.waitForSelector('[data-testid="build-result"]', { timeout: 120_000 });
  return page.textContent('[data-testid="build-result"]');
}

async function states(page) {
  return page.$$eval('[data-node-id]', (nodes) => nodes.map((n) => n.getAttribute('data-state')));
}

async function checkDockerfileMarks(page) {
  // The last build failed in the `broken` stage, whose RUN is line 9 and
  // whose FROM (line 8) draws the FromAsCasing check warning.
  await page.click('[data-testid="tab-dockerfile"]');
  await page.waitForSelector('[data-testid="failure-mark"]');
  const failed = await page.$$eval('.dockerfile .failed', (lines) => lines.map((l) => l.getAttribute('data-line')));
  assert.deepEqual(failed, ['9'], `failed lines: ${failed}`);
  assert.match(await page.textContent('[data-line="9"] [data-testid="failure-mark"]'), /✖/);
  const warned = await page.$$eval('.dockerfile .warned', (lines) => lines.map((l) => [l.getAttribute('data-line'), l.textContent]));
  assert.ok(warned.some(([line, text]) => line === '8' && /FromAsCasing|casing/i.test(text)), `warned lines: ${JSON.stringify(warned)}`);
  await page.screenshot({ path: join(artifacts, '07-dockerfile-marks.png') });
  console.log('ok dockerfile marks the failed step and the check warning');
}

async function checkCacheView(page) {
  await page.click('[data-testid="tab-cache"]');
  await page.waitForSelector('[data-testid="cache-table"] tbody tr');
  await page.waitForSelector('[data-testid="treemap"] rect');
  const rows = await page.$$('[data-testid="cache-table"] tbody tr');
  assert.ok(rows.length >= 3, `expected records from three builds, got ${rows.length}`);

  // Sorting by size twice flips the order.
  await page.click('[data-testid="sort-size"]');
  const ascending = await page.$$eval('[data-record-id]', (r) => r.map((x) => x.getAttribute('data-record-id')));
  await page.click('[data-testid="sort-size"]');
  const descending = await page.$$eval('[data-record-id]', (r) => r.map((x) => x.getAttribute('data-record-id')));
  assert.deepEqual([...ascending].sort(), [...descending].sort());
  assert.notDeepEqual(ascending, descending);

  // Pin the first record: the dry run keeps it and says why.
  const pinned = descending[0];
  await page.click(`[data-record-id="${pinned}"] [data-testid="pin"]`);
  await page.waitForSelector(`[data-record-id="${pinned}"] [data-testid="pin"]:text("Unpin")`);
  await page.click('[data-testid="prune-all"]');
  await page.click('[data-testid="prune-dry-run"]');
  await page.waitForSelector('[data-testid="prune-preview"]');
  const kept = await page.$$eval('[data-testid="prune-kept"]', (r) => r.map((x) => x.textContent));
  assert.ok(kept.some((text) => text.startsWith(pinned.slice(0, 12)) && text.includes('kept: pinned')), `kept: ${kept}`);
  assert.ok(kept.every((text) => /kept: \S/.test(text)), `a kept record has no reason: ${kept}`);
  assert.match(await page.textContent('[data-testid="prune-preview"] p'), /would delete \d+ records/);
  await page.screenshot({ path: join(artifacts, '08-cache.png') });
  const before = await page.$$eval('[data-record-id]', (r) => r.length);
  assert.equal(before, descending.length, 'a dry run deleted records');

  // An invalid option shows the server's message and deletes nothing.
  await page.fill('input[placeholder="48h"]', 'soon');
  await page.click('[data-testid="prune-dry-run"]');
  await page.waitForSelector('[data-testid="cache-message"]');
  assert.match(await page.textContent('[data-testid="cache-message"]'), /keep_duration/);
  await page.fill('input[placeholder="48h"]', '');

  await page.click(`[data-record-id="${pinned}"] [data-testid="pin"]`);
  await page.waitForSelector(`[data-record-id="${pinned}"] [data-testid="pin"]:text("Pin")`);
  console.log('ok cache view sorts, pins and previews a prune with reasons');
}

/** Checks the context transfer's bar in the transfers strip and in its node's details panel. */
async function checkContextProgress(page) {
  const bar = '[data-testid="transfers"] [data-kind="context"] [data-testid="progress"]';
  await page.waitForSelector(`${bar}[data-state="done"]`);
  assert.match(await page.textContent(`${bar} [data-testid="progress-amount"]`), /\d B|iB/);
  const vertex = await page.evaluate(
    () => [...window.__strata.store.transfers.values()].find((t) => t.kind === 'context')?.vertex,
  );
  assert.ok(vertex, 'no context transfer in the store');
  await page.click(`[data-node-id="${vertex}"]`);
  await page.waitForSelector('[data-testid="node-panel"] [data-testid="node-progress"] [data-progress-id="transfer"][data-state="done"]');
  await page.screenshot({ path: join(artifacts, '03-context-progress.png') });
  await page.click('[data-testid="node-panel"] button[aria-label="Close"]');
  console.log('ok context transfer progress in the strip and the node panel');
}

/** Checks that a tagged build shows a finished export bar with the layer's size. */
async function checkExportProgress(page) {
  const bar = '[data-testid="transfers"] [data-kind="export"] [data-testid="progress"]';
  await page.waitForSelector(`${bar}[data-state="done"]`);
  const title = await page.textContent('[data-testid="transfers"] [data-kind="export"] h4');
  assert.match(title, /exporting to/);
  const amount = await page.textContent(`${bar} [data-testid="progress-amount"]`);
  const [done, total] = amount.split(' / ');
  assert.ok(total, `export amount without a total: ${amount}`);
  assert.equal(done, total);
  await page.screenshot({ path: join(artifacts, '04-export-progress.png') });
  console.log('ok export progress of the tagged build');
}

/** Pans, zooms and fits the graph, and checks that each changes the view's transform. */
async function checkPanZoomFit(page) {
  const transform = () => page.$eval('.dag-world', (g) => g.style.transform);
  const fitted = await transform();
  const canvas = await page.$('.dag-canvas');
  const box = await canvas.boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.wheel(0, -300);
  await page.waitForFunction((before) => document.querySelector('.dag-world').style.transform !== before, fitted);
  const zoomed = await transform();
  assert.notEqual(scaleOf(zoomed), scaleOf(fitted), `wheel did not zoom: ${zoomed}`);

  // Drag from an empty corner: a press and release on a box would select
  // its step and open the details panel, which narrows the canvas.
  await page.mouse.move(box.x + 10, box.y + box.height - 10);
  await page.mouse.down();
  await page.mouse.move(box.x + 90, box.y + box.height - 50, { steps: 4 });
  await page.mouse.up();
  const panned = await transform();
  assert.equal(scaleOf(panned), scaleOf(zoomed));
  assert.notEqual(panned, zoomed, 'drag did not pan');

  await page.click('.dag .toolbar button:text("Fit")');
  assert.equal(await transform(), fitted);
  console.log('ok graph pans, zooms and fits');
}

function scaleOf(transform) {
  return Number(/scale\(([^)]+)\)/.exec(transform)?.[1]);
}

async function run() {
  await checkAccessControl();
  const { context, close } = await launch();
  try {
    const page = await context.newPage();
    page.on('pageerror', (error) => console.error('page error:', error.message));
    await page.goto(url);

    await page.click('[data-testid="demo-steps"]');
    await page.waitForSelector('[data-testid="build"]');
    await page.screenshot({ path: join(artifacts, '01-project.png') });
    console.log('ok demo opened');

    await page.click('[data-testid="build"]');
    await page.waitForSelector('[data-node-id][data-state="running"]', { timeout: 60_000 });
    await page.screenshot({ path: join(artifacts, '02-running.png') });
    assert.match(await waitForResult(page), /succeeded/);
    const first = await states(page);
    assert.ok(first.includes('done'), `expected done nodes, got ${first}`);
    await page.screenshot({ path: join(artifacts, '03-done.png') });
    console.log('ok first build done');
    await checkPanZoomFit(page);
    await checkContextProgress(page);

    await page.click('[data-testid="tab-project"]');
    await page.fill('[data-testid="tag"]', 'e2e-progress:latest');
    await page.click('[data-testid="build"]');
    await page.waitForFunction(() => window.__strata.store.running === false && window.__strata.store.finished === true, null, { timeout: 60_000 });
    await page.waitForSelector('[data-node-id][data-state="cached"]');
    const second = await states(page);
    assert.ok(!second.includes('done') || second.filter((s) => s === 'cached').length > 0, `expected cached nodes, got ${second}`);
    await page.screenshot({ path: join(artifacts, '04-cached.png') });
    console.log('ok rebuild cached');
    await checkExportProgress(page);

    await page.click('[data-testid="tab-project"]');
    await page.selectOption('[data-testid="target"]', 'broken');
    await page.click('[data-testid="build"]');
    await page.waitForSelector('[data-node-id][data-state="failed"]', { timeout: 60_000 });
    assert.match(await waitForResult(page), /failed/);
    await page.click('[data-node-id][data-state="failed"]');
    await page.waitForSelector('[data-testid="node-panel"]');
    await page.waitForFunction(() => document.querySelector('[data-testid="log-lines"]')?.textContent?.includes('failure detail'));
    const stderr = await page.$$eval('.log-line.stderr', (lines) => lines.map((l) => l.textContent));
    assert.ok(stderr.some((l) => l.includes('failure detail')), `stderr line not marked: ${stderr}`);
    await page.fill('.log input', 'about');
    assert.match(await page.textContent('[data-testid="log-hits"]'), /^1 matches/);
    await page.screenshot({ path: join(artifacts, '05-failed-log.png') });
    console.log('ok failing step log');

    await page.click('[data-testid="tab-history"]');
    await page.waitForSelector('[data-testid="history"] tbody tr:nth-child(3)');
    await page.screenshot({ path: join(artifacts, '06-history.png') });
    console.log('ok history lists three builds');

    await checkDockerfileMarks(page);
    await checkCacheView(page);
  } finally {
    await close();
  }
}

run().catch((error) => {
  console.error(error);
  process.exit(1);
});
