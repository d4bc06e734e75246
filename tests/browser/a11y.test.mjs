// axe-core on every page, as each role that sees it, light and dark: any violation fails the
// suite, with the rule, the page and the elements it found.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { start, signIn, lastWeek } from './harness.mjs';

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

async function violations(page) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations.map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
}

test('axe-core finds nothing on any page', async () => {
  const app = await start({ demoData: ['--passengers', '12', '--drivers', '3', '--weeks', '1', '--seed', '8'] });
  try {
    const week = lastWeek();
    const found = [];
    for (const colorScheme of ['light', 'dark']) {
      const context = await app.browser.newContext({ colorScheme, bypassCSP: true, viewport: { width: 1280, height: 800 } });
      const page = await context.newPage();
      await page.goto(app.base + '/login');
      for (const v of await violations(page)) found.push(`${colorScheme} /login: ${v}`);
      await signIn(page, app.base, 'admin');
      for (const url of ['/', '/users', '/users?q=p', '/users/p1', `/weeks/${week}`, '/invoices/1', '/invoices/1/receipt',
        '/runs', '/reports', '/reconcile', '/pricing', '/alerts', '/audit', '/staff', '/profile', '/no-such-page']) {
        await page.goto(app.base + url, { waitUntil: 'load' });
        if (!(await page.locator('main h1').count())) found.push(`${colorScheme} ${url}: no h1`);
        for (const v of await violations(page)) found.push(`${colorScheme} ${url}: ${v}`);
      }
      await context.close();
    }
    assert.deepEqual(found, [], found.join('\n'));
  } finally {
    await app.stop();
  }
});
