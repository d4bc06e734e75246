// Support in a real browser: a customer writes in; support finds them as they type, opens the
// invoice, double-clicks Refund and gets one refund; a refund above support's limit waits, and a
// finance member approves it. The week is charged first by `billing run` against a shared
// `billing psp-sim`, which `billing serve` then refunds through.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { start, startSim, openPage, signIn, outputDir, lastWeek, emailOf } from './harness.mjs';

test('support refunds once on a double click; above the limit finance approves', async () => {
  const sim = await startSim();
  const app = await start({
    env: sim.env,
    demoData: ['--passengers', '12', '--drivers', '3', '--weeks', '1', '--seed', '8'],
  });
  try {
    app.cli(['run', '--week', lastWeek(), '--approve', '--workers', '2']);
    const admin = app.cli(['staff', 'token', '--email', emailOf('admin'), '--name', 'browser']).trim();
    const limits = await fetch(app.base + '/api/v1/settings/refund-limits', {
      method: 'PUT',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ support_per_refund: '1.00', support_per_day: '5.00' }),
    });
    assert.equal(limits.status, 200);
    // A charged passenger, by the name support would be told.
    const charges = await (await fetch(`${sim.base}/sim/ledger`)).json();
    const charged = charges.entries.find((e) => e.kind === 'charge');
    const invoiceId = charged.metadata.invoice_id;
    const invoice = await (await fetch(`${app.base}/api/v1/invoices/${invoiceId}`, { headers: { authorization: `Bearer ${admin}` } })).json();
    const name = invoice.user_name;

    const { context, page, errors } = await openPage(app.browser, app.base + '/login');
    await signIn(page, app.base, 'support');
    await Promise.all([page.waitForURL(/\/users$/), page.click('nav >> text=Customers')]);
    // As you type: results without a reload.
    await page.evaluate(() => { window.__sameDocument = true; });
    await page.locator('[data-testid="user-search-input"]').pressSequentially(name.slice(0, 4).toLowerCase(), { delay: 60 });
    await page.waitForSelector(`[data-testid="user-row"] >> text=${invoice.user_id}`);
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'results as you type, no reload');
    await page.screenshot({ path: path.join(outputDir, 'users-search.png'), fullPage: true });
    await Promise.all([
      page.waitForURL(new RegExp(`/users/${invoice.user_id}$`)),
      page.click(`[data-testid="user-link"] >> text="${invoice.user_id}"`),
    ]);
    await page.waitForSelector('[data-testid="week-chart"]');
    assert.equal(await page.locator('[data-testid="week-cell"]').count(), 12, 'twelve weeks in the strip');
    await page.screenshot({ path: path.join(outputDir, 'customer.png'), fullPage: true });
    await Promise.all([
      page.waitForURL(new RegExp(`/invoices/${invoiceId}$`)),
      page.click(`[data-testid="customer-invoice-link"] >> text="#${invoiceId}"`),
    ]);
    await page.waitForSelector('[data-testid="refund-form"]');
    assert.equal(await page.textContent('[data-testid="invoice-charge"]'), 'charged');
    assert.ok(await page.locator('[data-testid="attempt-key"]').count() >= 1, 'the charge attempt with its key');

    // A double click sends the form twice with the same request id: one refund.
    let posts = 0;
    page.on('request', (request) => {
      if (request.method() === 'POST' && request.url().endsWith('/api/fn/refunds/create')) posts += 1;
    });
    await page.waitForFunction(() => document.querySelector('[data-testid="refund-request-id"]')?.value.length > 10);
    // Nothing is chosen for support: no amount, no reason; the limits and what is left today show.
    assert.equal(await page.inputValue('[data-testid="refund-amount-input"]'), '');
    assert.equal(await page.inputValue('[data-testid="refund-reason"]'), '');
    assert.match(await page.textContent('[data-testid="refund-limit"]'), /a day; .* is left today/);
    assert.match(await page.textContent('[data-testid="refund-daily-left"]'), /^\d+\.\d\d USD$/);
    await page.click('[data-testid="refund-whole"]');
    assert.equal(await page.inputValue('[data-testid="refund-amount-input"]'), (await page.textContent('[data-testid="invoice-refundable"]')).trim().split(' ')[0]);
    await page.fill('[data-testid="refund-amount-input"]', '0.50');
    await page.selectOption('[data-testid="refund-reason"]', 'duplicate');
    await page.fill('[data-testid="refund-note"]', 'customer says they were charged twice');
    await page.dblclick('[data-testid="refund-submit"]');
    await page.waitForSelector('[data-testid="refund-row"]');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="refund-state"]')[0]?.textContent === 'succeeded', null, { timeout: 20_000 });
    await page.waitForTimeout(1000);
    assert.ok(posts >= 2, `the double click sent the form ${posts} times`);
    assert.equal(await page.locator('[data-testid="refund-row"]').count(), 1, 'one refund');
    // Moments are written one way, in the business zone with its offset.
    assert.match(await page.textContent('[data-testid="refund-requested-at"]'), /^\w{3} \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d UTC \(\+00:00\)$/);
    assert.equal(await page.textContent('[data-testid="invoice-refunded"]'), '0.50');

    // Above the limit: waits for a second person. A new refund starts empty again.
    await page.click('[data-testid="another-refund"]');
    assert.equal(await page.inputValue('[data-testid="refund-amount-input"]'), '');
    assert.equal(await page.inputValue('[data-testid="refund-reason"]'), '');
    await page.fill('[data-testid="refund-amount-input"]', '2.00');
    await page.selectOption('[data-testid="refund-reason"]', 'service_issue');
    await page.click('[data-testid="refund-submit"]');
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="refund-state"]')].some((s) => s.textContent === 'awaiting approval'));
    assert.match(await page.textContent('[data-testid="refund-result"]'), /waits for a finance or admin approval/);
    await page.screenshot({ path: path.join(outputDir, 'invoice-refund-waiting.png'), fullPage: true });
    assert.deepEqual(errors, [], 'no console errors (support)');
    await context.close();

    // Finance sees it waiting in the queue and approves it there.
    const finance = await openPage(app.browser, app.base + '/login');
    await signIn(finance.page, app.base, 'finance');
    await finance.page.goto(app.base + '/users');
    const queued = finance.page.locator('[data-testid="refund-table"] [data-testid="refund-row"]');
    await queued.first().waitFor();
    assert.equal(await queued.count(), 1);
    await finance.page.waitForTimeout(500);
    await queued.first().locator('[data-testid="approve-refund"]').click();
    await finance.page.waitForSelector('[data-testid="no-awaiting"]');
    await Promise.all([
      finance.page.waitForURL(new RegExp(`/invoices/${invoiceId}$`)),
      finance.page.goto(`${app.base}/invoices/${invoiceId}`),
    ]);
    await finance.page.waitForFunction(() => [...document.querySelectorAll('[data-testid="refund-state"]')].every((s) => s.textContent === 'succeeded'), null, { timeout: 20_000 });
    assert.equal(await finance.page.textContent('[data-testid="invoice-refunded"]'), '2.50');
    await finance.page.screenshot({ path: path.join(outputDir, 'invoice-refunded.png'), fullPage: true });
    await finance.page.goto(`${app.base}/invoices/${invoiceId}/receipt`);
    await finance.page.waitForSelector('[data-testid="receipt-paid"]');
    await finance.page.screenshot({ path: path.join(outputDir, 'receipt.png'), fullPage: true });
    assert.deepEqual(finance.errors, [], 'no console errors (finance)');
    await finance.context.close();

    const refunds = (await (await fetch(`${sim.base}/sim/ledger`)).json()).entries.filter((e) => e.kind === 'refund');
    assert.deepEqual(refunds.map((r) => r.amount).sort((a, b) => a - b), [50, 200], 'the provider refunded exactly these');
  } finally {
    await app.stop();
    await sim.stop();
  }
});
