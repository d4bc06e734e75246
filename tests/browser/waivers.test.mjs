// Support in a real browser, before the week is approved: a customer writes "the driver never
// came"; support opens the draft week's invoice panel, waives that line with a reason (chosen,
// none preselected) and a note, by keyboard, and sees the line struck through with who and why,
// the invoice's and the week's totals reduced by it, and a new content hash to approve.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { start, openPage, signIn, outputDir, lastWeek, emailOf } from './harness.mjs';

/** Cents from "12.30 USD" or "12.30". */
const cents = (text) => {
  const match = text.trim().replaceAll(',', '').match(/^(\d+)\.(\d\d)( USD)?$/);
  assert.ok(match, `an amount: ${text}`);
  return Number(match[1]) * 100 + Number(match[2]);
};

test('support waives a line of a draft week and sees it struck through with who and why', async () => {
  const app = await start({ demoData: ['--passengers', '12', '--drivers', '3', '--weeks', '1', '--seed', '8'] });
  try {
    const week = lastWeek();
    const { context, page, errors } = await openPage(app.browser, app.base + '/login');
    await signIn(page, app.base, 'support');

    // A passenger with more than one line, so the invoice stays (smaller) once one is waived.
    const before = await (await page.request.get(`${app.base}/api/v1/weeks/${week}/preview`)).json();
    assert.equal(before.status, 'previewed');
    const invoice = before.invoices.find((i) => i.lines.length > 1 && i.lines.some((l) => l.attendance !== 'cancelled'));
    assert.ok(invoice, 'demo data has a passenger with several rides');
    const waived = invoice.lines.find((l) => l.attendance !== 'cancelled');
    const part = waived.attendance === 'no_show' ? 'no_show_fee' : 'ride_share';

    await page.goto(`${app.base}/weeks/${week}?invoice=${encodeURIComponent(invoice.user_id)}`);
    await page.waitForSelector('[data-testid="invoice-detail"]');
    await page.waitForSelector('[data-testid="waive-form"]');
    assert.equal(cents(await page.textContent('[data-testid="invoice-total"]')), cents(invoice.total));
    assert.equal(await page.locator('[data-testid="waived-line"]').count(), 0);
    // Nothing is chosen for support: what to waive and why are picked, never preselected.
    assert.equal(await page.inputValue('[data-testid="waive-target"]'), '');
    assert.equal(await page.inputValue('[data-testid="waive-reason"]'), '');

    // By keyboard: each control is reached with Tab and the form is sent with Enter.
    await page.focus('[data-testid="waive-target"]');
    await page.selectOption('[data-testid="waive-target"]', `${part}:${waived.ride_id}`);
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.dataset.testid), 'waive-reason');
    await page.selectOption('[data-testid="waive-reason"]', 'driver_no_show');
    await page.keyboard.press('Tab');
    await page.keyboard.type('The customer says the driver never came');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.dataset.testid), 'waive-button');
    await page.keyboard.press('Enter');

    // Struck through, with who and why; the totals dropped by the line (with or without the
    // WebAssembly: the form's post brings the page back with the change).
    const line = page.locator('[data-testid="waived-line"]', { hasText: waived.ride_id });
    await line.waitFor({ timeout: 20_000 });
    assert.equal(await line.locator('del').count() >= 2, true, 'the line is struck through');
    assert.equal(cents(await line.locator('[data-testid="waived-amount"]').textContent()), cents(waived.amount));
    const why = await line.locator('[data-testid="waiver-why"]').textContent();
    assert.match(why, new RegExp(`waived by ${emailOf('support').replace('.', '\\.')}`));
    assert.match(why, /The driver did not come/);
    assert.match(why, /the driver never came/);
    await page.waitForFunction(
      (expected) => {
        const total = document.querySelector('[data-testid="invoice-total"]')?.textContent ?? '';
        return total.replaceAll(',', '').startsWith(expected);
      },
      ((cents(invoice.total) - cents(waived.amount)) / 100).toFixed(2),
    );
    assert.equal(cents(await page.textContent('[data-testid="invoice-total"]')), cents(invoice.total) - cents(waived.amount));
    assert.equal(
      cents(`${await page.textContent('[data-testid="total-charged"]')} USD`),
      cents(before.totals.charged) - cents(waived.amount),
      "the week's charge drops by the line",
    );
    assert.equal(await page.locator('[data-testid="week-waiver"][data-state="applied"]').count(), 1);
    // The line is no longer offered; the struck line is not one of the invoice's lines.
    assert.equal(await page.locator(`[data-testid="waive-target"] option[value="${part}:${waived.ride_id}"]`).count(), 0);
    await line.scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(outputDir, 'week-waived-line.png'), fullPage: true });

    // What finance will approve is the new content: its hash names the waiver.
    const after = await (await page.request.get(`${app.base}/api/v1/weeks/${week}/preview`)).json();
    assert.notEqual(after.content_hash, before.content_hash);
    assert.equal(cents(after.totals.charged), cents(before.totals.charged) - cents(waived.amount));
    assert.equal(after.waivers.length, 1);
    assert.equal(after.waivers[0].requested_by, emailOf('support'));

    assert.deepEqual(errors, [], 'no console errors');
    await context.close();
  } finally {
    await app.stop();
  }
});
