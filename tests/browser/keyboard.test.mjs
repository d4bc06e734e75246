// Keyboard, dead ends and moments: the sign-in form focuses the email, the first Tab is a skip
// link to the content, an action's result takes the focus, unknown invoices and customers answer
// 404 and say so once, a refused page offers a way out that is not itself, a new token has a Copy
// button, and the audit log writes its moments in the business zone with its offset.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { start, openPage, signIn, emailOf, PASSWORD } from './harness.mjs';

test('the keyboard reaches the content, and no page is a dead end', async () => {
  // A business zone other than UTC, so that moments show it with its offset.
  const app = await start({
    env: { BILLING_TZ: 'Europe/Paris' },
    demoData: ['--passengers', '5', '--drivers', '2', '--weeks', '1', '--seed', '7'],
  });
  try {
    const { context, page } = await openPage(app.browser, app.base + '/login');
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('name')), 'email', 'the email field has the focus');
    await page.keyboard.type(emailOf('support'));
    await page.keyboard.press('Tab');
    await page.keyboard.type(PASSWORD);
    await Promise.all([page.waitForURL(app.base + '/'), page.keyboard.press('Enter')]);

    await page.goto(app.base + '/alerts');
    // Interactive first: a key pressed while the page hydrates may land before the router takes
    // over the page's links.
    await page.waitForSelector('html[data-hydrated]');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.dataset.testid), 'skip-link');
    await page.keyboard.press('Enter');
    // The router takes the in-page link, then the browser moves the focus.
    await page.waitForFunction(() => document.activeElement?.id === 'main', null, { timeout: 5_000 }).catch(() => {});
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'main', 'the content has the focus');

    for (const url of ['/invoices/999999', '/users/nobody-at-all']) {
      const response = await page.goto(app.base + url);
      assert.equal(response.status(), 404, url);
      const text = await page.textContent('main');
      assert.equal(text.match(/not found/g)?.length, 1, `${url} says it once: ${text}`);
    }

    // Support may not see reports: the way out leads elsewhere.
    await page.goto(app.base + '/reports');
    await page.waitForSelector('[data-testid="forbidden"]');
    assert.equal(await page.getAttribute('[data-testid="report-way-out"]', 'href'), '/');
    await context.close();

    const admin = await openPage(app.browser, app.base + '/login');
    await admin.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: app.base });
    await signIn(admin.page, app.base, 'admin');
    await admin.page.goto(app.base + '/profile');
    await admin.page.waitForSelector('[data-testid="create-token-form"]');
    await admin.page.waitForTimeout(500);
    await admin.page.fill('[data-testid="create-token-form"] input[name="name"]', 'copy test');
    await admin.page.click('[data-testid="create-token-form"] button[type="submit"]');
    const secret = (await admin.page.textContent('[data-testid="new-token"]')).trim();
    assert.equal(await admin.page.evaluate(() => document.activeElement?.dataset.testid), 'action-result', 'the focus moves to the result');
    await admin.page.click('[data-testid="copy-token"]');
    await admin.page.waitForSelector('[data-testid="copy-token"] >> text=Copied');
    assert.equal(await admin.page.evaluate(() => navigator.clipboard.readText()), secret);
    assert.equal(await admin.page.inputValue('[data-testid="create-token-form"] input[name="name"]'), '', 'the form starts again empty');

    // Moments in the business zone with its offset, one way.
    await admin.page.goto(app.base + '/audit');
    assert.match(await admin.page.textContent('[data-testid="audit-when"]'), /^\w{3} \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d Europe\/Paris \(\+0[12]:00\)$/);
    await admin.context.close();
  } finally {
    await app.stop();
  }
});
