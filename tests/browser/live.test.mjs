// Billing real customers, as staff see it: the test-mode band on every page (also on a phone and
// without scripts), the provider card of the overview, who cannot be charged flagged on the
// week's page before approval, and the run settings form on /runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { start, openPage, signIn, outputDir } from './harness.mjs';

/** The words the band draws above the page (CSS `body::before`). */
const band = (page) => page.evaluate(() => getComputedStyle(document.body, '::before').content);

test('test mode is said on every page, on a phone and without scripts', async () => {
  const app = await start();
  try {
    const { context, page, errors } = await openPage(app.browser, app.base + '/login');
    assert.match(await band(page), /Test mode: no real money moves · the simulator inside this process/);
    await signIn(page, app.base, 'support');
    assert.equal((await page.textContent('[data-testid="provider-mode"]')).trim(), 'test');
    assert.match(await page.textContent('[data-testid="provider-account"]'), /acct_simulator/);
    for (const route of ['/runs', '/users', '/alerts']) {
      await page.goto(app.base + route);
      assert.match(await band(page), /Test mode/, route);
    }
    assert.deepEqual(errors, [], 'no console errors');
    await context.close();

    // A phone, scripts off: the band is in the first HTML and fits the screen.
    const phone = await app.browser.newContext({ viewport: { width: 390, height: 844 }, javaScriptEnabled: false });
    const small = await phone.newPage();
    await small.goto(app.base + '/login');
    assert.match(await band(small), /Test mode/);
    const overflow = await small.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than the phone`);
    await small.screenshot({ path: path.join(outputDir, 'test-mode-phone.png') });
    await phone.close();
  } finally {
    await app.stop();
  }
});

test('without test provisioning the week flags who cannot be charged before approval', async () => {
  const app = await start({
    env: { PSP_PROVISION: 'off' },
    demoData: ['--passengers', '30', '--drivers', '3', '--weeks', '1', '--seed', '5'],
  });
  try {
    const { context, page, errors } = await openPage(app.browser, app.base + '/login');
    await signIn(page, app.base, 'finance');
    await Promise.all([page.waitForURL(/\/weeks\/\d{4}-W\d\d$/), page.click('[data-testid="nav-weeks"]')]);
    await page.waitForSelector('[data-testid="payment-gaps"]');
    const invoices = Number(await page.textContent('[data-testid="total-invoices"]'));
    assert.ok(invoices > 0);
    // Nobody has sent a card yet: every passenger is flagged, every driver waits.
    assert.equal(Number(await page.textContent('[data-testid="total-no-payment-method"]')), invoices);
    assert.ok(Number(await page.textContent('[data-testid="total-no-payout-account"]')) > 0);
    assert.match(await page.textContent('[data-testid="payment-gaps"]'), /passenger\(s\) cannot be charged/);
    await page.screenshot({ path: path.join(outputDir, 'week-payment-gaps.png'), fullPage: false });
    // The names link to the customers, whose page says what is missing.
    await page.click('[data-testid="payment-gaps"] a >> nth=0');
    await page.waitForSelector('[data-testid="provider-refs"]');
    assert.equal((await page.textContent('[data-testid="ref-card"]')).trim(), 'missing');
    await page.screenshot({ path: path.join(outputDir, 'customer-provider-refs.png'), fullPage: false });
    assert.deepEqual(errors, [], 'no console errors');
    await context.close();
  } finally {
    await app.stop();
  }
});

test('an admin changes the run settings from the runs page; a bad value is named', async () => {
  const app = await start();
  try {
    const { context, page, errors } = await openPage(app.browser, app.base + '/login');
    await signIn(page, app.base, 'admin');
    await page.goto(app.base + '/runs');
    await page.waitForSelector('[data-testid="run-settings-form"]');
    assert.equal(await page.inputValue('[data-testid="setting-rate_per_second"]'), '100');

    await page.fill('[data-testid="setting-workers"]', '0');
    await page.click('[data-testid="save-run-settings"]');
    await page.waitForSelector('[data-testid="run-settings"] .banner-danger');
    assert.match(await page.textContent('[data-testid="run-settings"]'), /workers.*from 1 to 256/s);

    await page.fill('[data-testid="setting-workers"]', '4');
    await page.fill('[data-testid="setting-rate_per_second"]', '50');
    await page.click('[data-testid="save-run-settings"]');
    await page.waitForSelector('text=Run settings saved');
    await page.reload();
    await page.waitForSelector('[data-testid="run-settings-form"]');
    assert.equal(await page.inputValue('[data-testid="setting-rate_per_second"]'), '50');
    assert.equal(await page.inputValue('[data-testid="setting-workers"]'), '4');
    await page.screenshot({ path: path.join(outputDir, 'run-settings.png'), fullPage: true });
    // The refused value's answer (422) is the only error the browser logs.
    assert.deepEqual(errors.filter((e) => !e.includes('status of 422')), [], 'no other console errors');
    await context.close();

    // Support reads them, and cannot change them.
    const other = await openPage(app.browser, app.base + '/login');
    await signIn(other.page, app.base, 'support');
    await other.page.goto(app.base + '/runs');
    await other.page.waitForSelector('[data-testid="run-settings-form"]');
    assert.equal(await other.page.locator('[data-testid="save-run-settings"]').count(), 0);
    assert.ok(await other.page.isDisabled('[data-testid="setting-workers"]'));
    await other.context.close();
  } finally {
    await app.stop();
  }
});
