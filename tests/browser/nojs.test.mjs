// Every page with JavaScript off: staff sign in with the plain form and find each page's data in
// the first HTML the server sends (the server waits for a page's data before answering), never a
// "Loading…" that only the WebAssembly would replace. Search works as a plain GET form.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { start, outputDir, lastWeek, emailOf, PASSWORD } from './harness.mjs';

test('with JavaScript off, every page shows its data', async () => {
  const app = await start({ demoData: ['--passengers', '20', '--drivers', '3', '--weeks', '1', '--seed', '5'] });
  try {
    const week = lastWeek();
    const context = await app.browser.newContext({ javaScriptEnabled: false, viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    await page.goto(app.base + '/login');
    await page.fill('input[name="email"]', emailOf('admin'));
    await page.fill('input[name="password"]', PASSWORD);
    await Promise.all([page.waitForURL(app.base + '/'), page.click('button[type="submit"]')]);
    assert.ok(await page.locator('[data-testid="nav"] a').count() >= 5, 'the navigation is in the first page after sign-in');

    // Search as a plain GET form.
    await page.goto(app.base + '/users');
    await page.fill('[data-testid="user-search-input"]', 'p1');
    await Promise.all([page.waitForURL(/\/users\?q=p1/), page.press('[data-testid="user-search-input"]', 'Enter')]);
    assert.ok(await page.locator('[data-testid="user-row"]').count() >= 1, 'search results without scripts');

    const pages = [
      ['/', '[data-testid="nav"]'],
      ['/users/p1', '[data-testid="customer-name"]'],
      [`/weeks/${week}`, '[data-testid="invoice-table"], [data-testid="invoices"] , table'],
      ['/invoices/1', 'h1'],
      ['/runs', 'h1'],
      ['/alerts', 'h1'],
      ['/audit', 'table'],
      ['/reports', '[data-testid="report-figures"]'],
      ['/reconcile', 'h1'],
      ['/pricing', '[data-testid="versions"]'],
      ['/staff', '[data-testid="staff-table"]'],
      ['/profile', 'h1'],
    ];
    for (const [url, selector] of pages) {
      await page.goto(app.base + url);
      const main = await page.textContent('main');
      assert.ok(!/Loading…|Searching…/.test(main), `${url} still says loading without scripts: ${main.slice(0, 200)}`);
      assert.ok(await page.locator(selector).count() >= 1, `${url}: ${selector} is in the first HTML`);
    }
    await page.goto(`${app.base}/weeks/${week}`);
    assert.match(await page.textContent('main'), /USD/, 'the week preview shows its amounts');
    await page.screenshot({ path: path.join(outputDir, 'week-no-script.png'), fullPage: false });
    await context.close();
  } finally {
    await app.stop();
  }
});
