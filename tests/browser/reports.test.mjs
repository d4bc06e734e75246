// Finance's report in a real browser: after a run and a refund, finance opens Reports, sees the
// ledger's figures (the same as the API's), the twelve-week bars and the refunds by reason, and
// downloads the CSV and the XLSX.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { start, startSim, openPage, signIn, outputDir, lastWeek, emailOf, grouped } from './harness.mjs';

test('finance opens the report and downloads CSV and XLSX', async () => {
  const sim = await startSim(['--decline-rate', '0.2', '--seed', '2']);
  const app = await start({
    env: sim.env,
    demoData: ['--passengers', '30', '--drivers', '4', '--weeks', '1', '--seed', '3'],
  });
  try {
    const week = lastWeek();
    app.cli(['run', '--week', week, '--approve', '--workers', '2']);
    const token = app.cli(['staff', 'token', '--email', emailOf('finance'), '--name', 'browser']).trim();
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const charge = (await (await fetch(`${sim.base}/sim/ledger`)).json()).entries.find((e) => e.kind === 'charge');
    for (const [amount, reason, id] of [['2.00', 'duplicate', 'r1'], ['0.75', 'service_issue', 'r2']]) {
      const made = await fetch(`${app.base}/api/v1/invoices/${charge.metadata.invoice_id}/refunds`, {
        method: 'POST', headers: auth, body: JSON.stringify({ amount, reason, request_id: id }),
      });
      assert.equal(made.status, 201);
    }
    const api = await (await fetch(`${app.base}/api/v1/reports/${week}`, { headers: auth })).json();

    const { context, page, errors } = await openPage(app.browser, app.base + '/login');
    await signIn(page, app.base, 'finance');
    await Promise.all([page.waitForURL(/\/reports$/), page.click('nav >> text=Reports')]);
    await page.waitForSelector('[data-testid="report-figures"]');
    assert.equal(await page.textContent('[data-testid="fig-charged"]'), `${grouped(api.figures.charged.amount)} USD`);
    assert.equal(await page.textContent('[data-testid="fig-refunded"]'), '2.75 USD');
    assert.equal(await page.textContent('[data-testid="count-invoices"]'), String(api.figures.invoices));
    assert.equal(await page.locator('[data-testid="history-bar"]').count(), 12);
    assert.equal(await page.locator('[data-testid="reason-bar"]').count(), 2);
    await page.screenshot({ path: path.join(outputDir, 'report.png'), fullPage: true });

    const [csv] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid="download-csv"]')]);
    assert.equal(csv.suggestedFilename(), `carpool-billing-${week}.csv`);
    const lines = readFileSync(await csv.path(), 'utf8').trimEnd().split('\r\n');
    assert.equal(lines[0], 'invoice_id,week,user_id,user_name,currency,total,charged,refunded,net,charge_state,charged_at,payment_intent');
    assert.equal(lines.length, api.figures.invoices + 1, 'one row per invoice');
    const charged = lines.slice(1).map((l) => l.split(',')[6]).reduce((sum, v) => sum + Math.round(Number(v) * 100), 0);
    assert.equal(charged, Math.round(Number(api.figures.charged.amount) * 100), 'the CSV adds up to the report');

    const [xlsx] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid="download-xlsx"]')]);
    assert.equal(xlsx.suggestedFilename(), `carpool-billing-${week}.xlsx`);
    const bytes = readFileSync(await xlsx.path());
    assert.equal(bytes.subarray(0, 2).toString(), 'PK', 'an XLSX (zip) file');

    // The previous week, from the form.
    await page.fill('[data-testid="report-from"]', api.previous_from);
    await page.fill('[data-testid="report-to"]', api.previous_to);
    await Promise.all([page.waitForURL(/from=/), page.click('[data-testid="report-show"]')]);
    await page.waitForSelector(`h1 >> text=${api.previous_from}`);
    assert.equal(await page.textContent('[data-testid="fig-charged"]'), '0.00 USD');
    assert.deepEqual(errors, [], 'no console errors');
    await context.close();

    const dark = await openPage(app.browser, app.base + '/login', { colorScheme: 'dark' });
    await signIn(dark.page, app.base, 'finance');
    await dark.page.goto(app.base + '/reports');
    await dark.page.waitForSelector('[data-testid="history-chart"]');
    await dark.page.screenshot({ path: path.join(outputDir, 'report-dark.png'), fullPage: true });
    await dark.context.close();
  } finally {
    await app.stop();
    await sim.stop();
  }
});
