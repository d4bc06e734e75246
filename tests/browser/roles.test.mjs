// Each role signs in through the real form and sees exactly its pages and buttons; pages it may
// not use say so; the admin adds and disables staff from the dashboard; signing out ends it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { start, openPage, signIn, clickUntil, outputDir } from './harness.mjs';

const NAV = {
  support: ['Overview', 'Weeks', 'Runs', 'Customers', 'Alerts'],
  finance: ['Overview', 'Weeks', 'Runs', 'Customers', 'Reports', 'Pricing', 'Reconcile', 'Disputes', 'Alerts', 'Audit log'],
  admin: ['Overview', 'Weeks', 'Runs', 'Customers', 'Reports', 'Pricing', 'Reconcile', 'Disputes', 'Alerts', 'Audit log', 'Staff'],
};
const PAGES = { '/audit': ['finance', 'admin'], '/staff': ['admin'], '/pricing': ['finance', 'admin'] };
const PAGE_DATA = { '/audit': '[data-testid="audit-table"]', '/staff': '[data-testid="staff-table"]', '/pricing': '[data-testid="versions"]' };

test('anonymous visitors are sent to the sign-in page, and back after signing in', async () => {
  const app = await start();
  try {
    const { context, page } = await openPage(app.browser, app.base + '/audit');
    assert.equal(new URL(page.url()).pathname, '/login');
    assert.equal(new URL(page.url()).searchParams.get('next'), '/audit');
    await page.fill('input[name="email"]', 'admin@browser.test');
    await page.fill('input[name="password"]', 'not the password');
    await page.click('button[type="submit"]');
    await page.waitForSelector('text=The email or the password is wrong');
    assert.equal(await page.inputValue('input[name="email"]'), 'admin@browser.test', 'the email is kept');
    await page.fill('input[name="password"]', 'browser suite password');
    await Promise.all([page.waitForURL(app.base + '/audit'), page.click('button[type="submit"]')]);
    await page.waitForSelector('[data-testid="audit-table"]');
    await context.close();
  } finally {
    await app.stop();
  }
});

for (const role of Object.keys(NAV)) {
  test(`${role} sees exactly the ${role} pages`, async () => {
    const app = await start();
    try {
      const { context, page, errors } = await openPage(app.browser, app.base + '/login');
      await signIn(page, app.base, role);
      assert.equal(await page.textContent('[data-testid="role"]'), role);
      const links = await page.$$eval('[data-testid="nav"] a', (as) => as.map((a) => a.textContent.trim()));
      assert.deepEqual(links, NAV[role]);
      await page.screenshot({ path: path.join(outputDir, `signed-in-${role}.png`) });

      for (const [href, allowed] of Object.entries(PAGES)) {
        await page.goto(app.base + href);
        if (allowed.includes(role)) {
          await page.waitForSelector(PAGE_DATA[href]);
          assert.equal(await page.$('[data-testid="forbidden"]'), null, `${role} ${href}`);
        } else {
          const reason = await page.textContent('[data-testid="forbidden"]');
          assert.match(reason, new RegExp(`the ${role} role may not`), `${role} ${href}`);
          assert.equal(await page.$('table'), null, `${role} sees no data on ${href}`);
        }
      }

      await page.goto(app.base + '/');
      await Promise.all([page.waitForURL(/\/login$/), page.click('[data-testid="sign-out"]')]);
      await page.goto(app.base + '/');
      assert.equal(new URL(page.url()).pathname, '/login', 'signed out');
      // The refused pages themselves answer 403, which Chromium logs (and, when the next page is
      // asked for while a refused page still loads, its loader reports as a failed fetch of the
      // WebAssembly); nothing else may fail.
      const unexpected = errors.filter((e) => !/status of 403|403 Forbidden fetching/.test(e));
      assert.deepEqual(unexpected, [], 'no console errors');
      await context.close();
    } finally {
      await app.stop();
    }
  });
}

test('the admin adds a staff member, who can sign in, then disables them', async () => {
  const app = await start();
  try {
    const { context, page, errors } = await openPage(app.browser, app.base + '/login');
    await signIn(page, app.base, 'admin');
    await page.goto(app.base + '/staff');
    await page.waitForSelector('[data-testid="staff-table"]');
    // Wait for the WebAssembly: the theme switch reacts only once hydrated.
    const theme = () => page.evaluate(() => document.documentElement.dataset.theme ?? null);
    await clickUntil(page, '[data-testid="theme-toggle"]', async () => (await theme()) === 'dark');

    const own = page.locator('[data-testid="staff-table"] tr', { hasText: 'admin@browser.test' });
    assert.equal(await own.locator('[data-testid="disable-start"]').count(), 0, 'no button to disable oneself');
    await own.locator('text=you').waitFor();

    const form = page.locator('[data-testid="add-staff-form"]');
    await form.locator('input[name="email"]').fill('Rosa@Browser.Test');
    await form.locator('select[name="role"]').selectOption('finance');
    await form.locator('input[name="password"]').fill('short');
    await form.locator('button[type="submit"]').click();
    // The browser's own check (minlength) stops it; nothing is added.
    assert.equal(await page.locator('text=rosa@browser.test').count(), 0);

    await form.locator('input[name="password"]').fill('rosa has a long password');
    await form.locator('button[type="submit"]').click();
    await page.waitForSelector('text=Added rosa@browser.test as finance.');
    const row = page.locator('[data-testid="staff-table"] tr', { hasText: 'rosa@browser.test' });
    await row.waitFor();
    await page.screenshot({ path: path.join(outputDir, 'staff-admin.png'), fullPage: true });

    // Rosa can sign in, in her own browser.
    const rosa = await openPage(app.browser, app.base + '/login');
    await rosa.page.fill('input[name="email"]', 'rosa@browser.test');
    await rosa.page.fill('input[name="password"]', 'rosa has a long password');
    await Promise.all([rosa.page.waitForURL(app.base + '/'), rosa.page.click('button[type="submit"]')]);
    assert.equal(await rosa.page.textContent('[data-testid="role"]'), 'finance');

    await form.locator('input[name="email"]').fill('rosa@browser.test');
    await form.locator('input[name="password"]').fill('another long password');
    await form.locator('button[type="submit"]').click();
    await page.waitForSelector('text=a staff member with this email already exists');

    // Disabling takes a second, separate step that names the person; Cancel leaves her be.
    await row.locator('[data-testid="disable-start"]').click();
    const confirm = page.locator('[data-testid="disable-confirm"]');
    await confirm.waitFor();
    assert.match(await confirm.locator('h2').textContent(), /Disable rosa@browser\.test \(finance\)\?/);
    await page.screenshot({ path: path.join(outputDir, 'staff-disable-confirm.png'), fullPage: false });
    await confirm.locator('[data-testid="disable-cancel"]').click();
    await confirm.waitFor({ state: 'detached' });
    await row.locator('text=active').waitFor();
    await row.locator('[data-testid="disable-start"]').click();
    await page.locator('[data-testid="disable-confirm-button"]', { hasText: 'Disable rosa@browser.test' }).click();
    await page.waitForSelector('text=Disabled rosa@browser.test.');
    await row.locator('text=disabled').waitFor();
    assert.equal(await page.locator('[data-testid="disable-confirm"]').count(), 0, 'the confirmation closes');
    assert.equal(await row.locator('[data-testid="disable-start"]').count(), 0);

    // Her open session ends with the account.
    await rosa.page.goto(app.base + '/');
    assert.equal(new URL(rosa.page.url()).pathname, '/login');
    await rosa.context.close();

    await page.goto(app.base + '/audit?action=staff.');
    const actions = await page.$$eval('[data-testid="audit-table"] tbody tr td:nth-child(4)', (tds) => tds.map((t) => t.textContent));
    assert.deepEqual(actions.slice(0, 2), ['staff.disable', 'staff.add']);
    await page.screenshot({ path: path.join(outputDir, 'audit-admin.png'), fullPage: true });
    assert.deepEqual(errors.filter((e) => !e.includes('422')), [], 'no console errors');
    await context.close();
  } finally {
    await app.stop();
  }
});

test('a staff member creates a token on the profile page, sees it once, and revokes it', async () => {
  const app = await start();
  try {
    const { context, page, errors } = await openPage(app.browser, app.base + '/login');
    await signIn(page, app.base, 'support');
    await page.click('[data-testid="profile-link"]');
    await page.waitForSelector('[data-testid="no-tokens"]');
    const theme = () => page.evaluate(() => document.documentElement.dataset.theme ?? null);
    await clickUntil(page, '[data-testid="theme-toggle"]', async () => (await theme()) === 'dark');

    const form = page.locator('[data-testid="create-token-form"]');
    await form.locator('input[name="name"]').fill('weekly export');
    await form.locator('button[type="submit"]').click();
    const secret = (await page.textContent('[data-testid="new-token"]')).trim();
    assert.match(secret, /^cbpat_[0-9a-f]{64}$/);
    const row = page.locator('[data-testid="token-table"] tr', { hasText: 'weekly export' });
    await row.locator('text=active').waitFor();
    await page.screenshot({ path: path.join(outputDir, 'profile-token.png'), fullPage: true });

    const me = await fetch(app.base + '/api/v1/me', { headers: { authorization: `Bearer ${secret}` } });
    assert.equal((await me.json()).role, 'support');

    await row.locator('button', { hasText: 'Revoke' }).click();
    await row.locator('text=revoked').waitFor();
    const after = await fetch(app.base + '/api/v1/me', { headers: { authorization: `Bearer ${secret}` } });
    assert.equal(after.status, 401);
    await page.reload();
    assert.equal(await page.locator('[data-testid="new-token"]').count(), 0, 'the secret is not shown again');
    assert.deepEqual(errors, [], 'no console errors');
    await context.close();
  } finally {
    await app.stop();
  }
});
