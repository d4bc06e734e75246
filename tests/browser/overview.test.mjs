// The overview page in a real browser: server-rendered facts, hydration (the theme switch only
// works once the WebAssembly runs), the theme remembered across reloads, no console errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { start, openPage, clickUntil, signIn, outputDir } from './harness.mjs';

test('overview renders, hydrates, and switches theme', async () => {
  const app = await start({ env: { BILLING_TZ: 'Europe/Paris' } });
  try {
    const { context, page, errors } = await openPage(app.browser, app.base + '/login');
    await signIn(page, app.base, 'support');

    await page.waitForSelector('[data-testid="backend"]');
    assert.equal(await page.textContent('[data-testid="backend"]'), 'SQLite');
    assert.match(await page.textContent('[data-testid="migrations"]'), /up to date\s+(\d+) of \1 migrations applied/);
    assert.equal(await page.textContent('[data-testid="time-zone"]'), 'Europe/Paris');
    assert.match(await page.textContent('[data-testid="local-time"]'), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0[12]:00$/);
    assert.equal(await page.title(), 'Overview · Carpool Billing');
    await page.screenshot({ path: path.join(outputDir, 'overview-light.png'), fullPage: true });

    const theme = () => page.evaluate(() => document.documentElement.dataset.theme ?? null);
    const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.equal(await theme(), null, 'no theme chosen yet: the system preference (light) applies');
    const lightBackground = await background();

    await clickUntil(page, '[data-testid="theme-toggle"]', async () => (await theme()) === 'dark');
    assert.notEqual(await background(), lightBackground, 'the dark theme changes the colours');
    await page.screenshot({ path: path.join(outputDir, 'overview-dark.png'), fullPage: true });

    // The choice is remembered: the server renders the next page dark, before any script runs.
    const response = await page.reload({ waitUntil: 'load' });
    assert.match(await response.text(), /<html[^>]*data-theme="dark"/);
    assert.equal(await theme(), 'dark');

    assert.deepEqual(errors, [], 'no console errors');
    await context.close();
  } finally {
    await app.stop();
  }
});

test('an unknown address shows a 404 page with the way back', async () => {
  const app = await start();
  try {
    const { context, page } = await openPage(app.browser, app.base + '/login');
    await signIn(page, app.base, 'finance');
    const response = await page.goto(app.base + '/nowhere');
    assert.equal(response.status(), 404);
    await page.click('text=Back to the overview');
    await page.waitForSelector('[data-testid="backend"]');
    assert.equal(new URL(page.url()).pathname, '/');
    await context.close();
  } finally {
    await app.stop();
  }
});

test('what is typed into the sign-in form before the WebAssembly loads is kept', async () => {
  const app = await start();
  try {
    const context = await app.browser.newContext();
    const page = await context.newPage();
    // Hold the WebAssembly back until the form is filled, as on a slow connection.
    let release;
    const released = new Promise((resolve) => (release = resolve));
    await page.route('**/pkg/*.wasm', async (route) => {
      await released;
      await route.continue();
    });
    await page.goto(app.base + '/login');
    await page.fill('input[name="email"]', 'finance@browser.test');
    await page.fill('input[name="password"]', 'browser suite password');
    release();
    const theme = () => page.evaluate(() => document.documentElement.dataset.theme ?? null);
    await clickUntil(page, '[data-testid="theme-toggle"]', async () => (await theme()) === 'dark');
    assert.equal(await page.inputValue('input[name="email"]'), 'finance@browser.test', 'hydration kept the email');
    assert.equal(await page.inputValue('input[name="password"]'), 'browser suite password');
    await Promise.all([page.waitForURL(app.base + '/'), page.click('button[type="submit"]')]);
    await context.close();
  } finally {
    await app.stop();
  }
});

test('the assets go out compressed under content names kept a year, the pages revalidated and never cached by others', async () => {
  const app = await start();
  try {
    const login = await fetch(`${app.base}/login`);
    assert.equal(login.headers.get('cache-control'), 'private, no-cache');
    const html = await login.text();
    // The page names the bundle by its content: a new build is a new name, so the old one can be
    // kept by browsers for a year.
    const bundle = html.match(/\/pkg\/(billing\.[0-9a-f]{20})\.wasm/)?.[1];
    assert.ok(bundle, 'the HTML loads a content-named WebAssembly');
    assert.ok(html.includes(`/pkg/${bundle}.js`), 'and its JavaScript under the same name');
    assert.ok(html.includes(`<link rel="stylesheet" href="/pkg/${bundle}.css"`), 'and its stylesheet');
    for (const kind of ['wasm', 'js', 'css']) {
      const url = `${app.base}/pkg/${bundle}.${kind}`;
      const whole = await fetch(url, { headers: { 'accept-encoding': 'identity' } });
      assert.equal(whole.status, 200, url);
      assert.equal(whole.headers.get('content-encoding'), null);
      assert.equal(whole.headers.get('cache-control'), 'public, max-age=31536000, immutable');
      const size = (await whole.arrayBuffer()).byteLength;
      for (const encoding of ['br', 'gzip']) {
        const response = await fetch(url, { headers: { 'accept-encoding': encoding } });
        assert.equal(response.headers.get('content-encoding'), encoding, `${kind} ${encoding}`);
        const sent = Number(response.headers.get('content-length'));
        assert.ok(sent > 0 && sent < size / 2, `${kind} ${encoding}: ${sent} bytes sent of ${size}`);
        assert.equal(response.headers.get('cache-control'), 'public, max-age=31536000, immutable');
        await response.arrayBuffer();
      }
    }
    // The plain names are gone, and what is not there is not cached.
    const plain = await fetch(`${app.base}/pkg/billing.wasm`);
    assert.equal(plain.status, 404);
    assert.equal(plain.headers.get('cache-control'), 'no-cache');
  } finally {
    await app.stop();
  }
});
