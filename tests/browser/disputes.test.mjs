// Finance answers a dispute in a real browser: the simulator opens disputes on a charged week's
// charges and sends the signed events; the queue lists them by due date with their counts, the
// invoice shows its dispute, the refund of it is refused, and the evidence goes out in one action.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { start, startSim, openPage, signIn, outputDir, lastWeek, emailOf } from './harness.mjs';

const SECRET = 'whsec_browser_disputes';

test('finance finds a dispute in the queue and sends its evidence from the invoice', async () => {
  const sim = await startSim();
  const app = await start({
    env: { ...sim.env, STRIPE_WEBHOOK_SECRET: SECRET },
    demoData: ['--passengers', '12', '--drivers', '3', '--weeks', '1', '--seed', '8'],
  });
  try {
    app.cli(['run', '--week', lastWeek(), '--approve', '--workers', '2']);
    const hooked = await fetch(`${sim.base}/sim/faults`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ webhook_url: `${app.base}/webhooks/stripe`, webhook_secret: SECRET }),
    });
    assert.equal(hooked.status, 200);
    const ledger = await (await fetch(`${sim.base}/sim/ledger`)).json();
    const charges = ledger.entries.filter((e) => e.kind === 'charge').slice(0, 2);
    const opened = [];
    for (const [charge, reason] of [[charges[0], 'duplicate'], [charges[1], 'fraudulent']]) {
      const answer = await fetch(`${sim.base}/sim/disputes`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ charge: charge.id, reason }),
      });
      assert.equal(answer.status, 200);
      opened.push(await answer.json());
    }
    const finance = app.cli(['staff', 'token', '--email', emailOf('finance'), '--name', 'browser']).trim();
    for (let tries = 0; ; tries += 1) {
      const queue = await (await fetch(`${app.base}/api/v1/disputes`, { headers: { authorization: `Bearer ${finance}` } })).json();
      if (queue.disputes?.length === 2) break;
      assert.ok(tries < 100, 'the dispute events arrived');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    const { context, page, errors } = await openPage(app.browser, app.base + '/login');
    await signIn(page, app.base, 'finance');
    await Promise.all([page.waitForURL(/\/disputes$/), page.click('nav >> text=Disputes')]);
    await page.waitForSelector('[data-testid="dispute-table"]');
    assert.equal(await page.locator('[data-testid="dispute-row"]').count(), 2);
    assert.match(await page.textContent('[data-testid="dispute-counts"]'), /needs response\s*2/);
    await page.screenshot({ path: path.join(outputDir, 'disputes-queue.png'), fullPage: true });

    const invoiceId = charges[0].metadata.invoice_id;
    await Promise.all([
      page.waitForURL(new RegExp(`/invoices/${invoiceId}#dispute$`)),
      page.click(`[data-testid="dispute-invoice"] >> text="#${invoiceId}"`),
    ]);
    await page.waitForSelector('[data-testid="dispute-panel"]');
    assert.equal(await page.textContent('[data-testid="dispute-panel"] [data-testid="dispute-status"]'), 'needs response');
    assert.ok(await page.isVisible('[data-testid="dispute-due"]'), 'the evidence deadline');
    assert.equal(await page.locator('[data-testid="refund-form"]').count(), 0, 'no refund form on a disputed charge');
    assert.ok(await page.isVisible('[data-testid="refund-closed"]'));
    assert.match(await page.textContent('[data-testid="ledger-table"]'), /dispute\.withdrawal/, 'the withdrawal in the invoice ledger');
    await page.fill('[data-testid="evidence-note"]', 'The passenger rode every ride of the week.');
    await page.click('[data-testid="send-evidence"]');
    await page.waitForSelector('text=Evidence sent');
    assert.equal(await page.textContent('[data-testid="dispute-panel"] [data-testid="dispute-status"]'), 'under review');
    assert.equal(await page.locator('[data-testid="evidence-form"]').count(), 0, 'sent once: the form is gone');
    await page.screenshot({ path: path.join(outputDir, 'invoice-dispute.png'), fullPage: true });
    // What the issuer received, at the provider.
    const atProvider = await (await fetch(`${sim.base}/v1/disputes/${opened[0].id}`, { headers: { authorization: 'Bearer sk_test_browser' } })).json();
    assert.equal(atProvider.status, 'under_review');
    assert.match(atProvider.evidence.uncategorized_text, /The passenger rode every ride of the week\./);

    // The customer's page lists it too.
    await Promise.all([page.waitForURL(/\/users\//), page.click('[data-testid="invoice-customer"]')]);
    await page.waitForSelector('[data-testid="customer-disputes"]');
    assert.match(await page.textContent('[data-testid="customer-dispute"]'), new RegExp(`#${invoiceId}.*under review`, 's'));

    // A refund of the disputed charge is refused by name.
    const refund = await fetch(`${app.base}/api/v1/invoices/${invoiceId}/refunds`, {
      method: 'POST',
      headers: { authorization: `Bearer ${finance}`, 'content-type': 'application/json' },
      body: JSON.stringify({ amount: '1.00', reason: 'duplicate', request_id: 'browser-disputed' }),
    });
    assert.equal(refund.status, 409);
    assert.match((await refund.json()).error, /disputed/);
    assert.deepEqual(errors, []);
    await context.close();
  } finally {
    await app.stop();
    await sim.stop();
  }
});
