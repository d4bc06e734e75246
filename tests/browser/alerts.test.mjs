// Alerts in a real browser: an admin sets the on-call webhook (a wrong address is refused,
// naming the field), sends a test alert, watches its message go from queued to sent (the
// receiver, a real HTTP endpoint here, got it once with its delivery id), acknowledges the alert
// and resolves it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { start, openPage, signIn, outputDir } from './harness.mjs';

/** A webhook endpoint on port 0 that records every delivery. */
async function receiver() {
  const received = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => {
      received.push({ id: req.headers['idempotency-key'], body: JSON.parse(body) });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}/hook`, received, close: () => server.close() };
}

test('an admin sets the webhook, sends a test alert, sees it delivered, acknowledges and resolves it', async () => {
  const hook = await receiver();
  const app = await start();
  try {
    const { context, page, errors } = await openPage(app.browser, app.base + '/login');
    await signIn(page, app.base, 'admin');
    await Promise.all([page.waitForURL(/\/alerts$/), page.click('nav >> text=Alerts')]);
    await page.waitForSelector('[data-testid="alert-settings-form"]');
    // The forms act once the WebAssembly has taken over the page.
    await page.waitForSelector('html[data-hydrated]', { timeout: 30_000 });

    await page.fill('[data-testid="webhook-url"]', 'ftp://not-a-webhook');
    await page.click('[data-testid="save-alert-settings"]');
    await page.waitForFunction(() => /webhook_url/.test(document.querySelector('main')?.textContent ?? ''));
    assert.match(await page.locator('main').textContent(), /webhook_url/, 'the error names the field');

    await page.fill('[data-testid="webhook-url"]', hook.url);
    await page.click('[data-testid="save-alert-settings"]');
    await page.waitForFunction(() => /Alert settings saved/.test(document.body.textContent));
    await page.click('[data-testid="send-test-alert"]');
    await page.waitForSelector('[data-testid="test-sent"]');
    await page.waitForFunction(
      () => [...document.querySelectorAll('[data-testid="message-state"]')].some((s) => s.textContent === 'sent'),
      null,
      { timeout: 20_000 },
    );
    assert.equal(hook.received.length, 1, 'the receiver got the test alert once');
    const delivery = await page.locator('[data-testid="message-row"] td.mono').first().textContent();
    assert.equal(hook.received[0].id, delivery, 'under the delivery id the page shows');
    assert.match(hook.received[0].body.text, /Test alert from admin@/);
    // The messages by state: none failed, the one sent under "sent".
    await Promise.all([page.waitForURL(/messages=failed$/), page.click('[data-testid="filter-failed"]')]);
    await page.waitForSelector('[data-testid="no-messages"]');
    await Promise.all([page.waitForURL(/messages=sent$/), page.click('[data-testid="filter-sent"]')]);
    await page.waitForSelector('[data-testid="message-row"][data-state="sent"]');
    assert.match(await page.textContent('[data-testid="filter-sent"]'), /sent \(1\)/);
    // Moments are written one way, in the business time zone (UTC here) with its offset.
    const moment = /^\w{3} \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d UTC \(\+00:00\)$/;
    assert.match(await page.textContent('[data-testid="message-created-at"]'), moment);
    assert.match(await page.textContent('[data-testid="alert-first-at"]'), moment);

    // Every page counts the open alert (it looks every ten seconds).
    await page.waitForFunction(() => document.querySelector('[data-testid="open-alerts-count"]')?.textContent === '1', null, { timeout: 15_000 });
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: path.join(outputDir, 'alerts.png'), fullPage: true });

    const open = page.locator('[data-testid="open-alerts"] [data-testid="alert-row"][data-kind="test"]');
    await open.locator('[data-testid="acknowledge-alert"]').click();
    await page.waitForFunction(() => /acknowledged/.test(document.querySelector('[data-testid="open-alerts"] [data-kind="test"] [data-testid="alert-state"]')?.textContent ?? ''));
    assert.match(await page.textContent('[data-testid="open-alerts"] [data-kind="test"] [data-testid="alert-acknowledged-at"]'), moment);
    await page.locator('[data-testid="open-alerts"] [data-kind="test"] [data-testid="resolve-alert"]').click();
    await page.waitForSelector('[data-testid="past-alerts"] [data-kind="test"]');
    await page.waitForSelector('[data-testid="no-open-alerts"]');
    assert.deepEqual(errors.filter((e) => !e.includes('status of 422')), [], 'no console errors but the refused settings');
    await context.close();
  } finally {
    await app.stop();
    hook.close();
  }
});
