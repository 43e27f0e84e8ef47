// The live stream of a claim event (GET /v1/coupon-templates/{id}/live) over a real socket, in
// both modes: what the frames say while claims flow, one measuring timer per event whatever the
// number of viewers, tenancy, the viewer bounds, and a clean end on shutdown.
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTemplate } from '../../test/harness/issue-coupons.ts';
import { claimOnce } from '../../test/harness/claims.ts';
import { openLiveStream, type LiveFrame } from '../../test/harness/live-stream.ts';
import { createPartner, createTestApp, type TestApp } from '../../test/harness/test-app.ts';
import { waitFor } from '../../test/harness/wait-for.ts';

async function listen(t: TestApp): Promise<string> {
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  return `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
}

const cps = (frame: LiveFrame) => frame.data.claimsPerSecond as Record<string, number>;

describe.each([
  ['embedded', false],
  ['distributed', true],
])('live stream, %s', (_mode, distributed) => {
  let t: TestApp;
  let url: string;
  beforeAll(async () => {
    t = await createTestApp({ distributed, env: { STAMPEDE_LIVE_VIEWERS_PER_PARTNER: '30', STAMPEDE_LIVE_VIEWERS_TOTAL: '40' } });
    url = await listen(t);
  });
  afterAll(async () => { await t.close(); });

  it('shows remaining fall, claims per second by outcome and p99 while claims flow', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: 30, perUserLimit: 1 });
    const stream = await openLiveStream(url, templateId, partner.apiKey);
    expect(stream.status).toBe(200);
    expect(stream.headers['content-type']).toMatch(/^text\/event-stream/);
    const first = await stream.waitForFrame((f) => f.event === 'stats');
    expect(first.data).toMatchObject({ templateId, status: 'open', paused: false, totalQuantity: 30, issued: 0, remaining: 30 });

    for (let i = 0; i < 40; i++) await claimOnce(t.app, partner.headers, templateId, `live-user-${i}`);
    await claimOnce(t.app, partner.headers, templateId, 'live-user-0');
    const soldOut = await stream.waitForFrame((f) => f.data.remaining === 0);
    expect(soldOut.data).toMatchObject({ issued: 30, status: 'sold_out' });
    await waitFor(async () => stream.frames.some((f) => cps(f).sold_out! > 0), { timeoutMs: 30_000, what: 'a frame with sold_out claims' });
    await waitFor(async () => stream.frames.some((f) => cps(f).issued! > 0 && typeof f.data.p99Ms === 'number'), { timeoutMs: 30_000, what: 'a frame with issued claims and a p99' });
    expect(stream.frames.every((f) => Object.keys(cps(f)).sort().join() === 'closed,issued,limit_reached,not_open,other,paused,sold_out')).toBe(true);

    // Persisted catches up with issued (distributed: once a persister drains the stream).
    if (!distributed) {
      const persisted = await stream.waitForFrame((f) => f.data.persisted === 30);
      expect(persisted.data.persisterLag).toEqual({ pending: 0, seconds: 0 });
    } else {
      const lagging = stream.frames.at(-1)!;
      expect((lagging.data.persisterLag as { pending: number }).pending).toBe(30 - (lagging.data.persisted as number));
    }
    stream.close();
  });

  it('shows a pause at once, with the claims it refuses counted as paused', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: 10 });
    const stream = await openLiveStream(url, templateId, partner.apiKey);
    await stream.waitForFrame((f) => f.data.status === 'open');
    const patched = await t.app.inject({ method: 'PATCH', url: `/v1/coupon-templates/${templateId}`, headers: partner.headers, payload: { paused: true } });
    expect(patched.statusCode).toBe(200);
    await stream.waitForFrame((f) => f.data.status === 'paused' && f.data.paused === true);
    expect(await claimOnce(t.app, partner.headers, templateId, 'paused-user')).toMatchObject({ status: 409, code: 'CLAIM_PAUSED' });
    await stream.waitForFrame((f) => cps(f).paused! > 0);
    await t.app.inject({ method: 'PATCH', url: `/v1/coupon-templates/${templateId}`, headers: partner.headers, payload: { paused: false, totalQuantity: 12 } });
    await stream.waitForFrame((f) => f.data.status === 'open' && f.data.totalQuantity === 12 && f.data.remaining === 12);
    stream.close();
  });

  it('runs one measuring timer per event, whatever the number of viewers, and stops it when the last leaves', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: 10 });
    const before = t.ctx.liveClaims.watchedCount;
    const streams = await Promise.all(Array.from({ length: 20 }, () => openLiveStream(url, templateId, partner.apiKey)));
    expect(streams.every((s) => s.status === 200)).toBe(true);
    await Promise.all(streams.map((s) => s.waitForFrame((f) => f.event === 'stats')));
    expect(t.ctx.liveClaims.watchedCount).toBe(before + 1);
    // Every viewer got the same frame: measured once, written to all.
    const second = await streams[0]!.waitForFrame((f) => f !== streams[0]!.frames[0]);
    await Promise.all(streams.map((s) => s.waitForFrame((f) => f.data.at === second.data.at)));
    for (const s of streams) s.close();
    await waitFor(async () => t.ctx.liveClaims.watchedCount === before, { timeoutMs: 30_000, what: 'the timer to stop' });
  });

  it('is partner-scoped: another partner\'s template is not found, a missing key is refused', async () => {
    const owner = await createPartner(t.app);
    const other = await createPartner(t.app);
    const templateId = await createTemplate(t.app, owner.headers);
    const foreign = await openLiveStream(url, templateId, other.apiKey);
    expect(foreign.status).toBe(404);
    const anonymous = await openLiveStream(url, templateId, '');
    expect(anonymous.status).toBe(401);
  });

  it('refuses viewers beyond the partner bound (429) and the process bound (503), and counts those who left', async () => {
    const a = await createPartner(t.app);
    const b = await createPartner(t.app);
    const templateA = await createTemplate(t.app, a.headers);
    const templateB = await createTemplate(t.app, b.headers);
    const held = await Promise.all(Array.from({ length: 30 }, () => openLiveStream(url, templateA, a.apiKey)));
    expect(held.every((s) => s.status === 200)).toBe(true);
    const refused = await openLiveStream(url, templateA, a.apiKey);
    expect(refused.status).toBe(429);
    expect(await refused.json()).toMatchObject({ error: { code: 'LIVE_VIEWERS_LIMIT_REACHED' } });
    const heldB = await Promise.all(Array.from({ length: 10 }, () => openLiveStream(url, templateB, b.apiKey)));
    expect(heldB.every((s) => s.status === 200)).toBe(true);
    const busy = await openLiveStream(url, templateB, b.apiKey);
    expect(busy.status).toBe(503);
    expect(await busy.json()).toMatchObject({ error: { code: 'LIVE_VIEWERS_BUSY' } });
    for (const s of [...held, ...heldB]) s.close();
    await waitFor(async () => {
      const again = await openLiveStream(url, templateA, a.apiKey);
      again.close();
      return again.status === 200;
    }, { timeoutMs: 30_000, what: 'a seat to free up' });
  });
});

describe('live stream on shutdown', () => {
  it('ends open streams so app.close() does not wait for them', async () => {
    const t = await createTestApp();
    const url = await listen(t);
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers);
    const stream = await openLiveStream(url, templateId, partner.apiKey);
    await stream.waitForFrame((f) => f.event === 'stats');
    await t.close();
    await stream.ended;
    expect(t.ctx.liveClaims.watchedCount).toBe(0);
  }, 60_000);
});
