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

test('the WebAssembly is split by route: a page preloads its own part and loads another page\'s when it is opened', async () => {
  const app = await start();
  try {
    const { context, page, errors } = await openPage(app.browser, app.base + '/login');
    const fetched = [];
    page.on('request', (request) => {
      if (request.url().endsWith('.wasm')) fetched.push(new URL(request.url()).pathname);
    });
    await signIn(page, app.base, 'admin');

    // The server-rendered overview asks for the split loader and for its own route's file.
    const html = await (await page.request.get(app.base + '/')).text();
    const links = (rel) => [...html.matchAll(/<link [^>]*>/g)]
      .map(([tag]) => tag)
      .filter((tag) => tag.includes(`rel="${rel}"`))
      .map((tag) => tag.match(/href="\/pkg\/([^"]+)"/)?.[1]);
    assert.ok(links('modulepreload').some((file) => /^__wasm_split\..+\.js$/.test(file)), 'the split loader');
    const preloaded = links('preload').filter((file) => file?.endsWith('.wasm'));
    assert.ok(preloaded.some((file) => file.startsWith('split___overview_route_view')), `the overview's own file: ${preloaded}`);
    assert.ok(!preloaded.some((file) => file.includes('runs_route_view')), 'no other page\'s file');

    // Once hydrated, a link to the runs page renders it in the page (no new document), after
    // loading the runs route's file.
    await page.waitForSelector('html[data-hydrated]', { timeout: 30_000 });
    assert.ok(!fetched.some((file) => file.includes('runs_route_view')), 'the runs page is not loaded before it is opened');
    await page.evaluate(() => { window.__sameDocument = true; });
    await page.click('nav a[href="/runs"]');
    await page.waitForFunction(() => document.title.startsWith('Runs'), null, { timeout: 30_000 });
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'the page changed without a new document');
    assert.ok(fetched.some((file) => file.includes('split___runs_route_view')), `the runs route's file was fetched: ${fetched}`);

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
