// The week's preview in a real browser, on demo data: the totals agree with the JSON API, search
// by passenger id and by name as you type, open an invoice, page through, and approve the week.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { start, openPage, clickUntil, signIn, outputDir } from './harness.mjs';

/** Cents from "12.30 USD". */
const cents = (text) => {
  const match = text.trim().replaceAll(',', '').match(/^(\d+)\.(\d\d) USD$/);
  assert.ok(match, `an amount: ${text}`);
  return Number(match[1]) * 100 + Number(match[2]);
};

test('finance previews a week of demo data, searches, opens an invoice and approves it', async () => {
  const app = await start({ demoData: ['--passengers', '120', '--drivers', '8', '--weeks', '2', '--seed', '11'] });
  try {
    const { context, page, errors } = await openPage(app.browser, app.base + '/login');
    await signIn(page, app.base, 'finance');

    // The navigation leads to the last complete week.
    await Promise.all([page.waitForURL(/\/weeks\/\d{4}-W\d\d$/), page.click('[data-testid="nav-weeks"]')]);
    const week = page.url().split('/').pop();
    await page.waitForSelector('[data-testid="week-totals"]');
    assert.equal((await page.textContent('[data-testid="week-status"]')).trim(), 'preview · not approved');
    assert.equal(await page.title(), `Week ${week} · Carpool Billing`);

    // The page shows what the API (and so the run) computes.
    const api = await page.request.get(`${app.base}/api/v1/weeks/${week}/preview`);
    assert.equal(api.status(), 200);
    const preview = await api.json();
    assert.equal(Number(await page.textContent('[data-testid="total-invoices"]')), preview.totals.invoices);
    assert.ok(preview.totals.invoices > 50, `demo data makes invoices: ${preview.totals.invoices}`);
    const figure = async (id) => cents(`${await page.textContent(`[data-testid="${id}"]`)} USD`);
    const charged = await figure('total-charged');
    assert.equal(charged, cents(`${preview.totals.charged} USD`));
    const sum = preview.invoices.reduce((total, invoice) => total + cents(`${invoice.total} USD`), 0);
    assert.equal(charged, sum, 'the total charged is the sum of the invoices');
    assert.equal((await figure('total-fees')) + (await figure('total-payouts')), charged);
    await page.screenshot({ path: path.join(outputDir, 'week-preview.png'), fullPage: false });

    // Keyset paging: 50 rows, then the next page starts after the last one.
    const ids = () => page.$$eval('[data-testid="invoice-link"]', (links) => links.map((a) => a.textContent));
    const firstPage = await ids();
    assert.equal(firstPage.length, 50);
    await Promise.all([page.waitForURL(/after=/), page.click('[data-testid="invoices-next"]')]);
    await page.waitForFunction((last) => {
      const first = document.querySelector('[data-testid="invoice-link"]');
      return first && first.textContent > last;
    }, firstPage[49]);
    const secondPage = await ids();
    assert.ok(secondPage.every((id) => id > firstPage[49]), 'the second page continues after the first');

    // Search as you type, by id prefix (waits for hydration: typing before it does nothing).
    await page.goto(`${app.base}/weeks/${week}`);
    const search = '[data-testid="invoice-search-input"]';
    await clickUntil(page, search, async () => {
      await page.fill(search, 'p11');
      await page.waitForTimeout(300);
      return page.url().includes('q=p11');
    });
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="invoice-link"]')].every((a) => a.textContent.startsWith('p11')));
    const found = await ids();
    assert.ok(found.length >= 1 && found.every((id) => id.startsWith('p11')), `${found}`);
    // …and by name, case-insensitively.
    await page.fill(search, 'grace');
    await page.waitForURL(/q=grace/);
    await page.waitForFunction(() => {
      const names = [...document.querySelectorAll('[data-testid="invoice-row"] td:nth-child(2)')].map((td) => td.textContent);
      return names.length > 0 && names.every((name) => name.startsWith('Grace'));
    });
    await page.fill(search, 'nobody-by-that-name');
    await page.waitForSelector('[data-testid="no-invoices"]');

    // Open an invoice: its lines add up to its total.
    await page.fill(search, 'p1');
    await page.waitForURL(/q=p1(&|$)/);
    await page.waitForSelector('[data-testid="invoice-link"]');
    const rowTotal = cents(await page.textContent('[data-testid="invoice-row"] td:nth-child(5)'));
    await page.click('[data-testid="invoice-link"]');
    await page.waitForSelector('[data-testid="invoice-detail"]');
    assert.equal(cents(await page.textContent('[data-testid="invoice-total"]')), rowTotal);
    const lineAmounts = await page.$$eval('[data-testid="invoice-lines"] tbody td:last-child', (tds) => tds.map((td) => td.textContent));
    assert.ok(lineAmounts.length > 0);
    assert.equal(lineAmounts.map(cents).reduce((a, b) => a + b, 0), rowTotal, 'the lines add up to the invoice');
    await page.screenshot({ path: path.join(outputDir, 'week-invoice.png'), fullPage: true });

    // Payouts tab.
    await page.click('[data-testid="tab-payouts"]');
    await page.waitForSelector('[data-testid="payout-row"]');
    assert.equal(await page.locator('[data-testid="payout-row"]').count(), preview.payouts.length);

    // Approve: the checkbox is required, then the week is frozen.
    await page.click('[data-testid="tab-invoices"]');
    await page.waitForSelector('[data-testid="approve-form"]');
    await page.click('[data-testid="approve-reviewed"]');
    await page.click('[data-testid="approve-button"]');
    await page.waitForFunction(() => document.querySelector('[data-testid="week-status"]')?.textContent.trim() === 'approved');
    assert.match(await page.textContent('[data-testid="approved-by"]'), /Approved by finance@browser\.test/);
    await page.reload();
    assert.equal((await page.textContent('[data-testid="week-status"]')).trim(), 'approved');
    assert.equal(await page.locator('[data-testid="approve-form"]').count(), 0, 'nothing left to approve');
    const frozen = await (await page.request.get(`${app.base}/api/v1/weeks/${week}/preview`)).json();
    assert.equal(frozen.status, 'approved');
    assert.equal(frozen.content_hash, preview.content_hash, 'what was approved is what was previewed');

    assert.deepEqual(errors, [], 'no console errors');
    await context.close();
  } finally {
    await app.stop();
  }
});

test('support opens a week preview (to waive lines) but is offered no approval', async () => {
  const app = await start();
  try {
    const { context, page } = await openPage(app.browser, app.base + '/login');
    await signIn(page, app.base, 'support');
    assert.equal(await page.locator('[data-testid="nav-weeks"]').count(), 1, 'a Weeks link for support');
    const response = await page.goto(app.base + '/weeks/2026-W01');
    assert.equal(response.status(), 200);
    await page.waitForSelector('[data-testid="week-totals"]');
    assert.equal(await page.locator('[data-testid="approve-form"]').count(), 0, 'no approval for support');
    assert.equal(await page.locator('[data-testid="start-run-form"]').count(), 0, 'no run to start either');
    await context.close();
  } finally {
    await app.stop();
  }
});
