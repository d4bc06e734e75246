// Time to interactive of a page (the overview unless BENCH_TTI_PATH says another): a signed-in
// admin opens it in a fresh browser context (nothing cached) five times; the time is from
// navigation start to the moment the WebAssembly marks the page hydrated (`<html
// data-hydrated>`), by the page's own clock. BENCH_LATENCY_MS adds that much latency to every
// request (Chromium's network emulation): what made the bundle split by route slow (README,
// "The WebAssembly bundle").
import { start, openPage, signIn } from '../tests/browser/harness.mjs';

// BENCH_TTI_PATH: another page than the overview; `/weeks` (the last complete week's preview)
// gets a small week of demo data first.
const target = process.env.BENCH_TTI_PATH ?? '/';
const latency = Number(process.env.BENCH_LATENCY_MS ?? 0);
const app = await start(target === '/' ? {} : { demoData: ['--passengers', '200', '--drivers', '20', '--weeks', '2'] });
try {
  const { context: first, page: login } = await openPage(app.browser, app.base + '/login');
  await signIn(login, app.base, 'admin');
  const storageState = await first.storageState();
  await first.close();
  const times = [];
  for (let i = 0; i < 5; i++) {
    const context = await app.browser.newContext({ storageState, viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    if (latency > 0) {
      const cdp = await context.newCDPSession(page);
      await cdp.send('Network.enable');
      await cdp.send('Network.emulateNetworkConditions', { offline: false, latency, downloadThroughput: -1, uploadThroughput: -1 });
    }
    await page.addInitScript(() => {
      new MutationObserver(() => {
        if (document.documentElement?.dataset.hydrated && window.__tti === undefined) window.__tti = performance.now();
      }).observe(document, { attributes: true, subtree: true });
    });
    await page.goto(app.base + target, { waitUntil: 'commit' });
    await page.waitForFunction(() => window.__tti !== undefined, null, { timeout: 30_000 });
    times.push(await page.evaluate(() => window.__tti));
    await context.close();
  }
  times.sort((a, b) => a - b);
  console.log(`${target} time to interactive${latency > 0 ? ` at ${latency} ms latency` : ''}: median ${times[2].toFixed(0)} ms, best ${times[0].toFixed(0)} ms, worst ${times[4].toFixed(0)} ms (5 cold loads)`);
} finally {
  await app.stop();
}
