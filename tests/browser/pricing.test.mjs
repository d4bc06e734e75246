// Pricing in a real browser: finance proposes a dearer version from this week, cannot approve it
// alone, prices last week both ways (totals, who pays more, the distribution, the largest
// increases linking to the customer), and an admin approves it, after which it is in force.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { start, openPage, signIn, outputDir, lastWeek, emailOf, grouped } from './harness.mjs';

test('finance proposes a version, prices last week both ways, and an admin approves it', async () => {
  const app = await start({ demoData: ['--passengers', '40', '--drivers', '5', '--weeks', '1', '--seed', '4'] });
  try {
    const week = lastWeek();
    const token = app.cli(['staff', 'token', '--email', emailOf('finance'), '--name', 'browser']).trim();
    const auth = { authorization: `Bearer ${token}` };
    const listed = await (await fetch(`${app.base}/api/v1/pricing/versions`, { headers: auth })).json();
    const thisWeek = listed.current_week;
    const before = await (await fetch(`${app.base}/api/v1/weeks/${week}/preview`, { headers: auth })).json();

    const { context, page, errors } = await openPage(app.browser, app.base + '/login');
    await signIn(page, app.base, 'finance');
    await Promise.all([page.waitForURL(/\/pricing$/), page.click('nav >> text=Pricing')]);
    await page.waitForSelector('[data-testid="versions"]');
    assert.match(await page.textContent('[data-testid="in-force"]'), /the built-in policy/);

    // A refused value names its field and stores nothing.
    await page.fill('[data-testid="propose-week"]', thisWeek);
    await page.fill('[data-testid="propose-base"]', '2.505');
    await page.fill('[data-testid="propose-per-km"]', '0.40');
    await page.fill('[data-testid="propose-bps"]', '1500');
    await page.fill('[data-testid="propose-no-show"]', '3.00');
    await page.fill('[data-testid="propose-note"]', 'Winter prices');
    await page.click('[data-testid="propose-submit"]');
    await page.waitForSelector('text=base');
    assert.equal(await page.locator('[data-testid="version-1"]').count(), 0, 'nothing stored');
    // The browser logs the refusal's 422; that one is expected.
    assert.ok(errors.every((e) => e.includes('422')), errors.join('\n'));
    errors.length = 0;

    await page.fill('[data-testid="propose-base"]', '2.50');
    await page.click('[data-testid="propose-submit"]');
    await page.waitForSelector('[data-testid="version-1"]');
    const row = page.locator('[data-testid="version-1"]');
    assert.equal(await row.locator('[data-testid="version-status"]').textContent(), 'proposed');
    assert.equal(await row.locator('[data-testid="approve-version"]').count(), 0, 'the proposer has no Approve button');
    await row.locator('[data-testid="awaiting-second"]').waitFor();

    // The what-if of last week, from the GET form.
    await page.selectOption('[data-testid="what-if-version"]', '1');
    await page.fill('[data-testid="what-if-week"]', week);
    await Promise.all([page.waitForURL(/version=1/), page.click('[data-testid="what-if-run"]')]);
    await page.waitForSelector('[data-testid="what-if"]');
    const api = await (await fetch(`${app.base}/api/v1/pricing/versions/1/what-if?week=${week}`, { headers: auth })).json();
    assert.equal(api.before.charged.amount, before.totals.charged, 'the what-if starts from the preview');
    assert.equal(await page.textContent('[data-testid="what-if-charged"]'), `${grouped(api.after.charged.amount)} USD`);
    assert.equal(await page.textContent('[data-testid="what-if-up"]'), String(api.up));
    assert.ok(api.up > 0 && api.down === 0, 'a dearer version raises invoices and lowers none');
    assert.equal(await page.locator('[data-testid="distribution-bar"]').count(), api.distribution.length);
    const first = page.locator('[data-testid="largest-increases"] a').first();
    assert.equal(await first.getAttribute('href'), `/users/${encodeURIComponent(api.largest_increases[0].user_id)}`);
    await page.screenshot({ path: path.join(outputDir, 'pricing-what-if.png'), fullPage: true });
    assert.deepEqual(errors, [], 'no console errors');
    await context.close();

    // A second person approves.
    const admin = await openPage(app.browser, app.base + '/login');
    await signIn(admin.page, app.base, 'admin');
    await admin.page.goto(app.base + '/pricing');
    const proposed = admin.page.locator('[data-testid="version-1"] [data-testid="approve-version"]');
    await proposed.waitFor();
    await proposed.click();
    await admin.page.locator('[data-testid="version-1"] [data-testid="version-status"] >> text=in force').waitFor();
    assert.match(await admin.page.textContent('[data-testid="in-force"]'), /version 1/);
    await admin.page.screenshot({ path: path.join(outputDir, 'pricing-approved.png'), fullPage: true });
    // Each week's preview names the version that prices it.
    await admin.page.goto(`${app.base}/weeks/${thisWeek}`);
    assert.equal(await admin.page.textContent('[data-testid="week-fee-policy"]'), 'fee policy version 1');
    await admin.page.goto(`${app.base}/weeks/${week}`);
    assert.equal(await admin.page.textContent('[data-testid="week-fee-policy"]'), 'the built-in policy');
    assert.deepEqual(admin.errors, [], 'no console errors');
    await admin.context.close();

    // On a phone.
    const phone = await app.browser.newContext({ viewport: { width: 390, height: 844 } });
    const small = await phone.newPage();
    await signIn(small, app.base, 'finance');
    await small.goto(`${app.base}/pricing?version=1&week=${week}`);
    await small.waitForSelector('[data-testid="what-if"]');
    const overflow = await small.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow} px wider than the phone`);
    await small.screenshot({ path: path.join(outputDir, 'pricing-phone.png'), fullPage: true });
    await phone.close();
  } finally {
    await app.stop();
  }
});
