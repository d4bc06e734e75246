// Time to interactive of the overview page: a signed-in admin opens `/` in a fresh browser
// context (nothing cached) five times; the time is from navigation start to the moment the
// WebAssembly marks the page hydrated (`<html data-hydrated>`), by the page's own clock.
import { start, openPage, signIn } from '../tests/browser/harness.mjs';

const app = await start();
try {
  const { context: first, page: login } = await openPage(app.browser, app.base + '/login');
  await signIn(login, app.base, 'admin');
  const storageState = await first.storageState();
  await first.close();
  const times = [];
  for (let i = 0; i < 5; i++) {
    const context = await app.browser.newContext({ storageState, viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    await page.addInitScript(() => {
      new MutationObserver(() => {
        if (document.documentElement?.dataset.hydrated && window.__tti === undefined) window.__tti = performance.now();
      }).observe(document, { attributes: true, subtree: true });
    });
    await page.goto(app.base + '/', { waitUntil: 'commit' });
    await page.waitForFunction(() => window.__tti !== undefined, null, { timeout: 30_000 });
    times.push(await page.evaluate(() => window.__tti));
    await context.close();
  }
  times.sort((a, b) => a - b);
  console.log(`overview time to interactive: median ${times[2].toFixed(0)} ms, best ${times[0].toFixed(0)} ms, worst ${times[4].toFixed(0)} ms (5 cold loads)`);
} finally {
  await app.stop();
}
