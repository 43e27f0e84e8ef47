// The operator console in a real browser (Debian's chromium driven by playwright-core) against a
// real `stampede serve`: sign in, watch an event's remaining stock fall during a burst of claims,
// pause it (claims refused), resume, raise the stock, and follow a job's progress bar to 100 %.
// Screenshots at 1280 and 390 px wide go to .artifacts/console/ (gitignored).
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/infra/free-port.ts';
import { spawnStampede, type StampedeProcess } from '../harness/spawn-stampede.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../.artifacts/console/', import.meta.url));
const ADMIN_TOKEN = 'console-e2e-admin-token-0123456789';

describe.skipIf(!existsSync(CHROMIUM) && !process.env.CI)('operator console in chromium', () => {
  let server: StampedeProcess;
  let browser: Browser;
  let base: string;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'stampede-console-'));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    // Embedded mode in its own data directory: its workers run only this test's job.
    server = spawnStampede(['serve'], { STAMPEDE_DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1', STAMPEDE_ADMIN_TOKEN: ADMIN_TOKEN });
    await server.waitForOutput(/Server listening/, 120_000);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-background-networking'] });
    await mkdir(ARTIFACTS, { recursive: true });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    server?.child.kill('SIGTERM');
    if (server) await server.exited;
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  }, 60_000);

  async function call(method: string, url: string, key: string | undefined, body?: unknown, contentType = 'application/json') {
    const headers: Record<string, string> = key ? { 'x-api-key': key } : { authorization: `Bearer ${ADMIN_TOKEN}` };
    if (body !== undefined) headers['content-type'] = contentType;
    const response = await fetch(`${base}${url}`, { method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
    const text = await response.text();
    return { status: response.status, json: text ? JSON.parse(text) as Record<string, unknown> : {} };
  }

  const claim = (key: string, templateId: string, userId: string) => call('POST', `/v1/coupon-templates/${templateId}/claims`, key, { userId });

  /** Waits until the element's text, trimmed, satisfies `match`; fails with the last text seen. */
  async function waitForText(page: Page, testId: string, match: (text: string) => boolean, what: string, timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      last = (await page.getByTestId(testId).textContent({ timeout: timeoutMs }))?.trim() ?? '';
      if (match(last)) return last;
      await page.waitForTimeout(100);
    }
    throw new Error(`timed out waiting for ${what}; ${testId} shows "${last}"`);
  }

  it('signs in, watches claims live, pauses, resumes, raises the stock and follows a job to 100 %', async () => {
    const partner = await call('POST', '/v1/partners', undefined, { name: 'Console e2e' });
    expect(partner.status).toBe(201);
    const key = partner.json.apiKey as string;
    const now = Date.now();
    const window = { claimStartsAt: new Date(now - 60_000).toISOString(), claimEndsAt: new Date(now + 3_600_000).toISOString(), validity: { type: 'RELATIVE', days: 30 } };
    const event = await call('POST', '/v1/coupon-templates', key, { name: 'Flash sale 10%', discount: { type: 'PERCENT', value: 10, maxAmount: 5_000 }, totalQuantity: 200, perUserLimit: 1, ...window });
    expect(event.status).toBe(201);
    const eventId = event.json.id as string;

    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${base}/console`);
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('link', { name: 'Flash sale 10%' }).click();
    await waitForText(page, 'remaining', (text) => text === '200', 'the first live frame');

    // A burst of claims: 150 users, 6 at a time, while the page shows claims per second.
    let next = 0;
    const burst = Promise.all(Array.from({ length: 6 }, async () => {
      const answers: number[] = [];
      while (next < 150) answers.push((await claim(key, eventId, `burst-${next++}`)).status);
      return answers;
    }));
    await waitForText(page, 'issued-rate', (text) => Number(text.replace(/,/g, '')) > 0, 'a non-zero issued rate');
    expect((await burst).flat().every((status) => status === 201)).toBe(true);
    await waitForText(page, 'remaining', (text) => text === '50', 'remaining to fall to 50');
    await page.screenshot({ path: path.join(ARTIFACTS, 'console-event-1280.png'), fullPage: true });

    // Pause with the keyboard only: the confirmation step takes the focus, Enter confirms.
    await page.getByRole('button', { name: 'Pause claims' }).focus();
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('alertdialog');
    await dialog.waitFor();
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Confirm: Pause');
    await page.keyboard.press('Enter');
    await page.getByRole('status').filter({ hasText: 'Claims paused.' }).waitFor();
    await page.getByRole('button', { name: 'Resume claims' }).waitFor();
    expect(await claim(key, eventId, 'while-paused')).toMatchObject({ status: 409, json: { error: { code: 'CLAIM_PAUSED' } } });
    await waitForText(page, 'refused-rate', (text) => text.includes('paused'), 'paused claims on the refused rate');

    // Cancel leaves things as they are; then resume for real.
    await page.getByRole('button', { name: 'Resume claims' }).click();
    await page.getByRole('button', { name: 'Cancel' }).click();
    expect(await claim(key, eventId, 'still-paused')).toMatchObject({ status: 409 });
    await page.getByRole('button', { name: 'Resume claims' }).click();
    await page.getByRole('button', { name: 'Confirm: Resume' }).click();
    await page.getByRole('button', { name: 'Pause claims' }).waitFor();
    expect((await claim(key, eventId, 'after-resume')).status).toBe(201);
    await waitForText(page, 'remaining', (text) => text === '49', 'remaining 49 after the resumed claim');

    // Raise the stock to 300: 151 issued, 149 remain.
    await page.getByLabel('Total stock').fill('300');
    await page.getByRole('button', { name: 'Set stock' }).click();
    await page.getByRole('button', { name: 'Confirm: Set stock' }).click();
    await waitForText(page, 'remaining', (text) => text === '149', 'remaining 149 after the stock was raised');
    expect((await call('GET', `/v1/coupon-templates/${eventId}`, key)).json).toMatchObject({ totalQuantity: 300, paused: false });

    // At 390 px wide nothing overflows sideways.
    await page.setViewportSize({ width: 390, height: 844 });
    await waitForText(page, 'remaining', (text) => text === '149', 'the page at 390 px');
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await page.screenshot({ path: path.join(ARTIFACTS, 'console-event-390.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });

    // A distribution job, followed on the jobs page to 100 %.
    const gift = await call('POST', '/v1/coupon-templates', key, { name: 'Welcome gift', discount: { type: 'FIXED', value: 500 }, totalQuantity: null, ...window });
    const csv = `user_id\n${Array.from({ length: 2_000 }, (_, i) => `gift-user-${i}`).join('\n')}\n`;
    const accepted = await call('POST', `/v1/coupon-templates/${gift.json.id as string}/distributions`, key, csv, 'text/csv');
    expect(accepted.status).toBe(202);
    const jobId = accepted.json.jobId as string;
    await page.getByRole('link', { name: 'Jobs' }).click();
    await page.getByLabel('Job id').fill(jobId);
    await page.getByRole('button', { name: 'Watch job' }).click();
    await waitForText(page, 'job-percent', (text) => text === '100%', 'the job to reach 100 %', 60_000);
    expect(await page.getByLabel(`Progress of job ${jobId}`).evaluate((bar) => (bar as HTMLProgressElement).value)).toBe(100);
    await page.screenshot({ path: path.join(ARTIFACTS, 'console-jobs-1280.png'), fullPage: true });

    // The user look-up shows a user's coupons.
    await page.getByRole('link', { name: 'Users' }).click();
    await page.getByLabel('User id').fill('burst-0');
    await page.getByRole('button', { name: 'Look up' }).click();
    await page.getByRole('cell', { name: 'Flash sale 10%' }).waitFor();

    // The key never went into a URL, nor into the server's output.
    expect(page.url()).not.toContain(key);
    expect(server.output()).not.toContain(key);
    await page.close();
  }, 240_000);
});
