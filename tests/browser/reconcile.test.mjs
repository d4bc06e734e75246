// Reconciliation in a real browser: an old system charged two passengers a second time at the
// provider; finance reconciles the week, sees exactly those two (with customer and invoice), the
// banner on every page, approves the proposed repair, watches the refunds succeed, and a second
// reconciliation matches everything.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { start, startSim, openPage, signIn, outputDir, lastWeek } from './harness.mjs';

test('finance reconciles a week and approves the repair of duplicate charges', async () => {
  const sim = await startSim();
  const app = await start({
    env: sim.env,
    demoData: ['--passengers', '10', '--drivers', '3', '--weeks', '1', '--seed', '5'],
  });
  try {
    const week = lastWeek();
    app.cli(['run', '--week', week, '--approve', '--workers', '2']);
    const auth = { authorization: `Bearer ${sim.env.PSP_API_KEY}` };
    const charges = (await (await fetch(`${sim.base}/v1/charges?limit=100`, { headers: auth })).json()).data
      .filter((c) => c.status === 'succeeded');
    const duplicates = [];
    for (const [i, c] of charges.slice(0, 2).entries()) {
      const form = new URLSearchParams({
        amount: String(c.amount), currency: c.currency, customer: c.customer, payment_method: c.payment_method,
        confirm: 'true', off_session: 'true', 'metadata[invoice_id]': c.metadata.invoice_id,
        'metadata[user_id]': c.metadata.user_id, 'metadata[week]': c.metadata.week,
      });
      const made = await fetch(`${sim.base}/v1/payment_intents`, {
        method: 'POST', headers: { ...auth, 'Idempotency-Key': `old-system-${i}` }, body: form,
      });
      assert.equal(made.status, 200);
      duplicates.push((await made.json()).id);
    }

    const { context, page, errors } = await openPage(app.browser, app.base + '/login');
    await signIn(page, app.base, 'finance');
    await Promise.all([page.waitForURL(/\/reconcile$/), page.click('nav >> text=Reconcile')]);
    await page.waitForSelector('[data-testid="reconcile-verdict"]');
    assert.match(await page.textContent('[data-testid="reconcile-verdict"]'), /Everything matches/, 'the run reconciled itself');
    await page.waitForTimeout(500);
    await page.click('[data-testid="reconcile-now"]');
    await page.waitForFunction(() => /2 item\(s\) do not match/.test(document.querySelector('[data-testid="reconcile-verdict"]')?.textContent ?? ''));
    const items = await page.$$eval('[data-testid="reconcile-item"] td:nth-child(2)', (tds) => tds.map((td) => td.textContent));
    assert.deepEqual(items.sort(), [...duplicates].sort(), 'exactly the duplicates');
    assert.equal(await page.locator('[data-testid="repair-row"]').count(), 2);
    await page.reload();
    await page.waitForSelector('[data-testid="mismatch-banner"]');
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: path.join(outputDir, 'reconcile-mismatch.png'), fullPage: true });

    await page.click('[data-testid="repair-reviewed"]');
    await page.click('[data-testid="approve-repair"]');
    await page.waitForFunction(() => {
      const states = [...document.querySelectorAll('[data-testid="repair-state"]')].map((s) => s.textContent);
      return states.length === 2 && states.every((s) => s === 'succeeded');
    }, null, { timeout: 20_000 });
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: path.join(outputDir, 'reconcile-repaired.png'), fullPage: true });
    await page.click('[data-testid="reconcile-now"]');
    await page.waitForFunction(() => /Everything matches/.test(document.querySelector('[data-testid="reconcile-verdict"]')?.textContent ?? ''));
    await page.reload();
    await page.waitForSelector('[data-testid="reconcile-verdict"]');
    assert.equal(await page.locator('[data-testid="mismatch-banner"]').count(), 0, 'the banner is gone once the week matches');
    assert.deepEqual(errors, [], 'no console errors');
    await context.close();

    const refunds = (await (await fetch(`${sim.base}/sim/ledger`)).json()).entries.filter((e) => e.kind === 'refund');
    assert.deepEqual(refunds.map((r) => r.payment_intent).sort(), [...duplicates].sort(), 'exactly the duplicates refunded');
  } finally {
    await app.stop();
    await sim.stop();
  }
});
