// An event's claim throttles (template setting claimThrottle): per user and per client address,
// answered 429 CLAIM_THROTTLED with Retry-After and counted by reason; the client address is the
// socket's unless STAMPEDE_TRUST_PROXY is set, and then the last trusted hop of X-Forwarded-For.
// A throttle counts per one-second window: a sequence that happened to straddle a window boundary
// proves nothing and is run again with fresh ids (inOneWindow).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTemplate } from '../../test/harness/issue-coupons.ts';
import { createPartner, createTestApp, templateBody, type TestApp } from '../../test/harness/test-app.ts';
import { WINDOW_MS } from '../infra/shared-buckets.ts';

interface Attempt {
  readonly userId: string;
  readonly headers?: Record<string, string>;
  readonly remoteAddress?: string;
}

async function claim(t: TestApp, headers: Record<string, string>, templateId: string, attempt: Attempt) {
  const response = await t.app.inject({
    method: 'POST', url: `/v1/coupon-templates/${templateId}/claims`,
    headers: { ...headers, ...attempt.headers }, payload: { userId: attempt.userId },
    ...(attempt.remoteAddress ? { remoteAddress: attempt.remoteAddress } : {}),
  });
  return { status: response.statusCode, code: response.json().error?.code as string | undefined, retryAfter: response.headers['retry-after'] };
}

/**
 * Runs `sequence` until one run starts and ends in the same window, each run on what `prepare`
 * made afresh for it (an event of its own: buckets of earlier runs do not carry over).
 */
async function inOneWindow<P, T>(prepare: () => Promise<P>, sequence: (prepared: P, suffix: string) => Promise<T>): Promise<T> {
  for (let run = 0; ; run++) {
    const prepared = await prepare();
    const window = Math.floor(Date.now() / WINDOW_MS);
    const result = await sequence(prepared, `${run}-${Date.now()}`);
    if (Math.floor(Date.now() / WINDOW_MS) === window || run === 9) return result;
  }
}

describe.each([
  ['embedded (in-process buckets)', false],
  ['distributed (buckets settled with Redis)', true],
])('claim throttles, %s', (_mode, distributed) => {
  let t: TestApp;
  beforeAll(async () => { t = await createTestApp({ distributed }); });
  afterAll(async () => { await t.close(); });

  it('a user over perUserPerSecond gets 429 CLAIM_THROTTLED with Retry-After; another user is not throttled; counted by reason', async () => {
    const partner = await createPartner(t.app);
    const event = () => createTemplate(t.app, partner.headers, { totalQuantity: 1_000, perUserLimit: 100, claimThrottle: { perUserPerSecond: 2 } });
    const statuses = await inOneWindow(event, async (id, suffix) => {
      const first = [];
      for (let i = 0; i < 3; i++) first.push(await claim(t, partner.headers, id, { userId: `heavy-${suffix}` }));
      const other = await claim(t, partner.headers, id, { userId: `light-${suffix}` });
      return { id, first, other };
    });
    const { id } = statuses;
    expect(statuses.first.map((answer) => answer.status)).toEqual([201, 201, 429]);
    expect(statuses.first[2]).toMatchObject({ code: 'CLAIM_THROTTLED' });
    expect(Number(statuses.first[2]!.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(statuses.other.status).toBe(201);
    const metrics = (await t.app.inject({ url: '/metrics' })).body;
    expect(metrics).toMatch(new RegExp(`stampede_claim_throttled_total\\{template="${id}",reason="user"\\} [1-9]`));
  });

  it('without STAMPEDE_TRUST_PROXY the socket address is throttled and X-Forwarded-For is ignored', async () => {
    const partner = await createPartner(t.app);
    const event = () => createTemplate(t.app, partner.headers, { totalQuantity: 1_000, perUserLimit: 100, claimThrottle: { perClientAddressPerSecond: 1 } });
    const { id, answers } = await inOneWindow(event, async (id, suffix) => ({ id, answers: [
      await claim(t, partner.headers, id, { userId: `a-${suffix}`, remoteAddress: '192.0.2.10', headers: { 'x-forwarded-for': '203.0.113.1' } }),
      // A spoofed header does not make the same socket another client.
      await claim(t, partner.headers, id, { userId: `b-${suffix}`, remoteAddress: '192.0.2.10', headers: { 'x-forwarded-for': '203.0.113.2' } }),
      await claim(t, partner.headers, id, { userId: `c-${suffix}`, remoteAddress: '192.0.2.11' }),
    ] }));
    expect(answers.map((answer) => answer.status)).toEqual([201, 429, 201]);
    expect(answers[1]).toMatchObject({ code: 'CLAIM_THROTTLED' });
    expect(Number(answers[1]!.retryAfter)).toBeGreaterThanOrEqual(1);
    const metrics = (await t.app.inject({ url: '/metrics' })).body;
    expect(metrics).toMatch(new RegExp(`stampede_claim_throttled_total\\{template="${id}",reason="address"\\} [1-9]`));
  });

  it('is set at creation and by PATCH (each field alone, null removes it), recorded in the changes, obeyed by the next claim', async () => {
    const partner = await createPartner(t.app);
    const created = await t.app.inject({
      method: 'POST', url: '/v1/coupon-templates', headers: partner.headers,
      payload: templateBody({ totalQuantity: 1_000, perUserLimit: 100, claimThrottle: { perUserPerSecond: 1 } }),
    });
    expect(created.statusCode).toBe(201);
    const id = created.json().id as string;
    expect(created.json().claimThrottle).toEqual({ perUserPerSecond: 1, perClientAddressPerSecond: null });

    const patch = (payload: Record<string, unknown>) => t.app.inject({ method: 'PATCH', url: `/v1/coupon-templates/${id}`, headers: partner.headers, payload });
    const raised = await patch({ claimThrottle: { perClientAddressPerSecond: 500 } });
    expect(raised.statusCode).toBe(200);
    expect(raised.json().claimThrottle).toEqual({ perUserPerSecond: 1, perClientAddressPerSecond: 500 });
    const removed = await patch({ claimThrottle: { perUserPerSecond: null } });
    expect(removed.json().claimThrottle).toEqual({ perUserPerSecond: null, perClientAddressPerSecond: 500 });
    expect((await t.app.inject({ url: `/v1/coupon-templates/${id}`, headers: partner.headers })).json().claimThrottle)
      .toEqual({ perUserPerSecond: null, perClientAddressPerSecond: 500 });

    const changes = (await t.app.inject({ url: `/v1/coupon-templates/${id}/changes`, headers: partner.headers })).json();
    expect(changes.items.map((change: { before: unknown; after: unknown }) => [change.before, change.after])).toEqual([
      [{ claimThrottle: { perUserPerSecond: 1, perClientAddressPerSecond: 500 } }, { claimThrottle: { perUserPerSecond: null, perClientAddressPerSecond: 500 } }],
      [{ claimThrottle: { perUserPerSecond: 1, perClientAddressPerSecond: null } }, { claimThrottle: { perUserPerSecond: 1, perClientAddressPerSecond: 500 } }],
    ]);
    // No user throttle any more: the same user claims twice in a second.
    const twice = await inOneWindow(async () => id, async (_id, suffix) => [
      await claim(t, partner.headers, id, { userId: `u-${suffix}` }),
      await claim(t, partner.headers, id, { userId: `u-${suffix}` }),
    ]);
    expect(twice.map((answer) => answer.status)).toEqual([201, 201]);

    // Out of range: refused like any bad input.
    expect((await patch({ claimThrottle: { perUserPerSecond: 1_001 } })).statusCode).toBe(400);
    expect((await patch({ claimThrottle: { perClientAddressPerSecond: 0 } })).statusCode).toBe(400);
  });
});

describe('claim throttles with STAMPEDE_TRUST_PROXY', () => {
  let t: TestApp;
  beforeAll(async () => { t = await createTestApp({ env: { STAMPEDE_TRUST_PROXY: '1' } }); });
  afterAll(async () => { await t.close(); });

  it('throttles the last trusted hop of X-Forwarded-For, whatever a client wrote before it', async () => {
    const partner = await createPartner(t.app);
    const event = () => createTemplate(t.app, partner.headers, { totalQuantity: 1_000, perUserLimit: 100, claimThrottle: { perClientAddressPerSecond: 1 } });
    const answers = await inOneWindow(event, async (id, suffix) => [
      // Two clients behind the same proxy (the socket) are told apart by the hop the proxy added.
      await claim(t, partner.headers, id, { userId: `a-${suffix}`, remoteAddress: '10.0.0.1', headers: { 'x-forwarded-for': '203.0.113.1' } }),
      await claim(t, partner.headers, id, { userId: `b-${suffix}`, remoteAddress: '10.0.0.1', headers: { 'x-forwarded-for': '203.0.113.2' } }),
      // The first client again, with an invented address in front of the one the proxy added: still itself.
      await claim(t, partner.headers, id, { userId: `c-${suffix}`, remoteAddress: '10.0.0.1', headers: { 'x-forwarded-for': '198.51.100.9, 203.0.113.1' } }),
    ]);
    expect(answers.map((answer) => answer.status)).toEqual([201, 201, 429]);
    expect(answers[2]).toMatchObject({ code: 'CLAIM_THROTTLED' });
  });
});
