// Every page on a 390 px wide phone: none scrolls sideways (wide tables scroll inside their own
// frame), the header stays compact with the navigation folded into a menu, and the pages are
// photographed for the README's tour.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { start, signIn, outputDir, lastWeek } from './harness.mjs';

test('no page is wider than a 390 px phone', async () => {
  const app = await start({ demoData: ['--passengers', '20', '--drivers', '3', '--weeks', '1', '--seed', '6'] });
  try {
    const week = lastWeek();
    const context = await app.browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 1 });
    const page = await context.newPage();
    await signIn(page, app.base, 'admin');
    const pages = [
      ['/', 'overview'],
      ['/users?q=p1', 'users'],
      ['/users/p1', 'customer'],
      [`/weeks/${week}`, 'week'],
      ['/invoices/1', 'invoice'],
      ['/runs', 'runs'],
      ['/reports', 'report'],
      ['/reconcile', 'reconcile'],
      ['/pricing', 'pricing'],
      ['/alerts', 'alerts'],
      ['/audit', 'audit'],
      ['/staff', 'staff'],
      ['/profile', 'profile'],
    ];
    const wide = [];
    for (const [url, name] of pages) {
      await page.goto(app.base + url, { waitUntil: 'load' });
      await page.waitForSelector('main h1');
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      if (overflow > 0) wide.push(`${url}: ${overflow} px too wide`);
      const header = await page.evaluate(() => document.querySelector('header').getBoundingClientRect().height);
      assert.ok(header <= 112, `${url}: the header is ${header} px high`);
      await page.screenshot({ path: path.join(outputDir, `phone-${name}.png`), fullPage: false });
    }
    assert.deepEqual(wide, [], 'pages wider than the phone');

    // The navigation is one tap away (it opens without scripts too), and closes after a link.
    await page.goto(app.base + '/');
    assert.equal(await page.locator('[data-testid="nav"] a >> text=Reports').isVisible(), false, 'folded');
    await page.click('[data-testid="nav-menu"]');
    await page.screenshot({ path: path.join(outputDir, 'phone-menu.png'), fullPage: false });
    await Promise.all([page.waitForURL(/\/reports$/), page.click('[data-testid="nav"] a >> text=Reports')]);
    await context.close();
  } finally {
    await app.stop();
  }
});
