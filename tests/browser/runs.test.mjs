// The weekly run in a real browser: finance approves a week of demo data, starts its run, watches
// it progress live (server-sent events, no reload), pauses it, resumes it and sees it complete.
// `billing serve` works the run against its in-process simulator, slowed down to be watchable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { start, openPage, signIn, outputDir } from './harness.mjs';

const count = async (page) => Number(await page.textContent('[data-testid="run-charged-count"]'));
// Every moment is written one way, in the business time zone (UTC here) with its offset.
const moment = /^\w{3} \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d UTC \(\+00:00\)$/;

test('finance starts a run, watches it live, pauses, resumes and sees it complete', async () => {
  const app = await start({
    env: { PSP_SIM_LATENCY_MS: '200' },
    demoData: ['--passengers', '120', '--drivers', '6', '--weeks', '1', '--seed', '4'],
  });
  try {
    const { context, page, errors } = await openPage(app.browser, app.base + '/login');
    await signIn(page, app.base, 'finance');
    await Promise.all([page.waitForURL(/\/weeks\/\d{4}-W\d\d$/), page.click('[data-testid="nav-weeks"]')]);
    await page.waitForSelector('[data-testid="approve-form"]');
    await page.click('[data-testid="approve-reviewed"]');
    await page.click('[data-testid="approve-button"]');
    await page.waitForSelector('[data-testid="start-run"]');
    // Start leads to the run's live page.
    await Promise.all([page.waitForURL(/\/runs\/\d+$/), page.click('[data-testid="start-run"]')]);
    await page.waitForSelector('[data-testid="run-controls"]');

    // Live: the figures change on their own; a marker set on the page survives (no reload).
    await page.evaluate(() => { window.__sameDocument = true; });
    await page.waitForFunction(() => Number(document.querySelector('[data-testid="run-charged-count"]')?.textContent) >= 10, null, { timeout: 60_000 });
    const first = await count(page);
    await page.waitForFunction((n) => Number(document.querySelector('[data-testid="run-charged-count"]').textContent) > n, first, { timeout: 10_000 });
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'updated without a reload');
    assert.match(await page.textContent('[data-testid="run-state"]'), /canary|charging/);
    // Mid-run it shows a rate, not 0.0 calls/s.
    await page.waitForFunction(() => parseFloat(document.querySelector('[data-testid="run-rate"]')?.textContent) > 0, null, { timeout: 15_000 });
    await page.screenshot({ path: path.join(outputDir, 'run-live.png'), fullPage: true });

    // The kill switch.
    await page.fill('[data-testid="pause-form"] input[name="reason"]', 'checking a customer complaint');
    await page.click('[data-testid="pause-button"]');
    await page.waitForFunction(() => document.querySelector('[data-testid="run-state"]')?.textContent.startsWith('paused'));
    await page.waitForTimeout(1500); // calls in flight finish and are recorded
    const paused = await count(page);
    await page.waitForTimeout(2000);
    assert.equal(await count(page), paused, 'nothing is charged while paused');
    const events = await page.textContent('[data-testid="run-events"]');
    assert.match(events, /paused by finance@browser\.test: checking a customer complaint/);
    assert.match(await page.textContent('[data-testid="run-started"]'), moment);
    assert.match(await page.locator('[data-testid="run-event-at"]').first().textContent(), moment);

    await page.click('[data-testid="resume-button"]');
    await page.waitForFunction(() => document.querySelector('[data-testid="run-state"]')?.textContent === 'completed', null, { timeout: 90_000 });
    assert.match(await page.textContent('[data-testid="run-progress-text"]'), /^120 of 120 invoices settled · 6 of 6 drivers paid$/);
    assert.match(await page.textContent('[data-testid="run-completed"]'), moment);
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'followed to the end without a reload');
    await page.screenshot({ path: path.join(outputDir, 'run-completed.png'), fullPage: true });

    // The week's page now shows what was charged, not a recomputation.
    await page.click('h1 a');
    await page.waitForSelector('[data-testid="charge-state"]');
    const states = await page.$$eval('[data-testid="charge-state"]', (spans) => spans.map((s) => s.textContent));
    assert.equal(states.length, 50);
    assert.ok(states.every((s) => s === 'charged'), `${states}`);
    assert.equal(await page.locator('[data-testid="run-link"]').count(), 1, 'the week links to its run');

    assert.deepEqual(errors, [], 'no console errors');
    await context.close();
  } finally {
    await app.stop();
  }
});

test("the week's page follows its run: charge states fill in without a reload", async () => {
  const app = await start({
    env: { PSP_SIM_LATENCY_MS: '150' },
    demoData: ['--passengers', '60', '--drivers', '4', '--weeks', '1', '--seed', '5'],
  });
  try {
    const { context, page, errors } = await openPage(app.browser, app.base + '/login');
    await signIn(page, app.base, 'finance');
    await Promise.all([page.waitForURL(/\/weeks\/\d{4}-W\d\d$/), page.click('[data-testid="nav-weeks"]')]);
    const week = page.url().split('/').pop();
    await page.click('[data-testid="approve-reviewed"]');
    await page.click('[data-testid="approve-button"]');
    await page.waitForSelector('[data-testid="start-run"]');
    assert.equal(await page.locator('[data-testid="charge-state"]').count(), 0, 'nothing charged yet');
    // Someone else starts the run (another tab, the API): this page stays where it is.
    await page.reload();
    await page.waitForSelector('[data-testid="start-run"]');
    await page.evaluate(() => { window.__sameDocument = true; });
    const started = await page.evaluate(async (week) => {
      const response = await fetch('/api/fn/runs/start', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `week=${week}`,
      });
      return response.status;
    }, week);
    assert.equal(started, 200);
    await page.reload();
    await page.waitForSelector('[data-testid="run-link"]');
    await page.evaluate(() => { window.__sameDocument = true; });
    // The run's progress, live, and the table's charge states as they are made.
    await page.waitForSelector('[data-testid="run-progress"]', { timeout: 30_000 });
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="charge-state"]').length > 0, null, { timeout: 60_000 });
    await page.waitForFunction(() => /^completed\./.test(document.querySelector('[data-testid="run-progress"]')?.textContent ?? ''), null, { timeout: 90_000 });
    await page.waitForFunction(() => {
      const states = [...document.querySelectorAll('[data-testid="charge-state"]')].map((s) => s.textContent);
      return states.length === 50 && states.every((s) => s === 'charged');
    }, null, { timeout: 20_000 });
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'no reload');
    assert.deepEqual(errors, [], 'no console errors');
    await context.close();
  } finally {
    await app.stop();
  }
});
