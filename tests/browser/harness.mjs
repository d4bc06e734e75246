// Shared pieces of the browser suite: a real `billing serve` on a fresh SQLite database, and
// Debian's Chromium driven by playwright-core. Everything started here is stopped by `stop()`.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');

/** Where screenshots and traces go (ignored by git). */
export const outputDir = path.join(root, 'tests/output');
mkdirSync(outputDir, { recursive: true });

const billingBin = process.env.BILLING_BIN ?? path.join(root, 'target/debug/billing');
const siteRoot = process.env.LEPTOS_SITE_ROOT ?? path.join(root, 'target/site');

/** One account per role, created through `billing staff add` with this password. */
export const ROLES = ['support', 'finance', 'admin'];
export const PASSWORD = 'browser suite password';
export const emailOf = (role) => `${role}@browser.test`;

/** Flags that let Chromium run as root on a machine with no outside network. */
const chromiumArgs = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/**
 * Starts a migrated `billing serve` on port 0 and Chromium; returns handles and `stop`.
 * `demoData`: arguments for `billing demo-data`, run before the server starts.
 */
export async function start({ env = {}, demoData = null } = {}) {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'billing-browser-'));
  const childEnv = {
    PATH: process.env.PATH,
    DATABASE_URL: `sqlite://${dataDir}/billing.db`,
    LEPTOS_SITE_ROOT: siteRoot,
    RUST_LOG: 'warn',
    PSP_URL: 'sim',
    PSP_PROVISION: 'test',
    ...env,
  };
  execFileSync(billingBin, ['migrate'], { env: childEnv, stdio: ['ignore', 'ignore', 'inherit'] });
  for (const role of ROLES) {
    execFileSync(billingBin, ['staff', 'add', '--email', emailOf(role), '--role', role], {
      env: childEnv,
      input: PASSWORD + '\n',
      stdio: ['pipe', 'ignore', 'inherit'],
    });
  }
  if (demoData) {
    execFileSync(billingBin, ['demo-data', ...demoData], { env: childEnv, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  const server = spawn(billingBin, ['serve', '--addr', '127.0.0.1:0'], {
    env: childEnv,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('billing serve did not print its address in 30 s')), 30_000);
    server.on('exit', (code) => reject(new Error(`billing serve exited early with ${code}`)));
    createInterface({ input: server.stdout }).on('line', (line) => {
      const match = line.match(/serving (http:\/\/\S+)/);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
  });
  const stopServer = async () => {
    if (server.exitCode === null && server.signalCode === null) {
      const exited = new Promise((resolve) => server.on('exit', resolve));
      server.kill('SIGTERM');
      await exited;
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  let browser;
  try {
    // Playwright gives each launch a fresh temporary profile (the --user-data-dir of the recipe).
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      args: chromiumArgs,
      timeout: 30_000,
    });
  } catch (error) {
    await stopServer();
    throw error;
  }
  const stop = async () => {
    await browser.close().catch(() => {});
    await stopServer();
  };
  /** Runs a `billing` command on the same database (and provider); returns its stdout. */
  const cli = (args) => execFileSync(billingBin, args, { env: childEnv, stdio: ['ignore', 'pipe', 'inherit'] }).toString();
  return { base, browser, server, stop, cli };
}

/** Starts `billing psp-sim` on port 0 (a provider that several `billing` processes share). */
export async function startSim(args = []) {
  const sim = spawn(billingBin, ['psp-sim', '--addr', '127.0.0.1:0', ...args], {
    env: { PATH: process.env.PATH, RUST_LOG: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('billing psp-sim did not print its address in 30 s')), 30_000);
    sim.on('exit', (code) => reject(new Error(`billing psp-sim exited early with ${code}`)));
    createInterface({ input: sim.stdout }).on('line', (line) => {
      const match = line.match(/psp-sim listening on (http:\/\/\S+)/);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
  });
  const stop = async () => {
    if (sim.exitCode === null && sim.signalCode === null) {
      const exited = new Promise((resolve) => sim.on('exit', resolve));
      sim.kill('SIGTERM');
      await exited;
    }
  };
  return { base, stop, env: { PSP_URL: base, PSP_API_KEY: 'sk_test_browser', PSP_PROVISION: 'test' } };
}

/** The ISO week (`2026-W47`) before the one containing now, in UTC. */
export function lastWeek() {
  const d = new Date(Date.now() - 7 * 86_400_000);
  const day = (d.getUTCDay() + 6) % 7;
  const thursday = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - day + 3);
  const year = new Date(thursday).getUTCFullYear();
  const week = Math.ceil(((thursday - Date.UTC(year, 0, 1)) / 86_400_000 + 1) / 7);
  return `${year}-W${String(week).padStart(2, '0')}`;
}

/** A page that records console errors and uncaught exceptions, to assert there were none. */
export async function openPage(browser, url, { colorScheme = 'light' } = {}) {
  const context = await browser.newContext({ colorScheme, viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const errors = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(String(error)));
  await page.goto(url, { waitUntil: 'load' });
  return { context, page, errors };
}

/** Clicks `selector` until `done()` holds: clicks before the WebAssembly loads do nothing. */
export async function clickUntil(page, selector, done, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    await page.click(selector);
    await page.waitForTimeout(150);
    if (await done()) return;
  }
  throw new Error(`clicking ${selector} had no effect within ${timeoutMs} ms: did the page hydrate?`);
}

/** Signs in through the login form (a plain form post: works before the WebAssembly loads). */
export async function signIn(page, base, role) {
  await page.goto(base + '/login');
  await page.fill('input[name="email"]', emailOf(role));
  await page.fill('input[name="password"]', PASSWORD);
  await Promise.all([page.waitForURL(base + '/'), page.click('button[type="submit"]')]);
  await page.waitForSelector('[data-testid="role"]', { state: 'attached' });
}

/** An API amount ("7200.36") as the dashboard writes it ("7,200.36"). */
export function grouped(amount) {
  const [whole, decimals] = amount.split('.');
  const digits = whole.replace('-', '').replace(/\B(?=(\d{3})+$)/g, ',');
  return `${whole.startsWith('-') ? '-' : ''}${digits}${decimals === undefined ? '' : `.${decimals}`}`;
}
