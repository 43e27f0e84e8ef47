// The claim fast path (decisions 230, 245) over a real socket: a plain claim is answered before
// Fastify, a refusal this process knows at once, a claim that may issue once the gate decided, an
// error as Fastify's error handler answers it; each as Fastify answers the same request (inject()
// goes around the server, so it is Fastify's answer). Everything else is handed to Fastify and
// answered as without the fast path, a body already read included; the rate limit and the claim
// throttles hold on it.
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../errors.ts';
import { drainClaims } from '../../test/harness/claims.ts';
import { createTemplate } from '../../test/harness/issue-coupons.ts';
import { metricSample } from '../../test/harness/metrics-text.ts';
import { adminHeaders, createPartner, createTestApp, type TestApp } from '../../test/harness/test-app.ts';
import { waitFor } from '../../test/harness/wait-for.ts';

interface Sent {
  readonly method?: 'POST' | 'GET';
  readonly path: string;
  readonly headers: Record<string, string>;
  /** A string is sent with its Content-Length; an array as chunks (Transfer-Encoding: chunked). */
  readonly body: string | string[];
}

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** Headers a socket answer has and inject() does not, or that differ per request. */
const PER_CONNECTION = new Set(['date', 'connection', 'keep-alive', 'x-request-id']);

function comparable(headers: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !PER_CONNECTION.has(name)).map(([name, value]) => [name, String(value)]));
}

describe.each([
  ['embedded (in-process gate)', false],
  ['distributed (Redis gate, refusal flags)', true],
])('claim fast path, %s', (_mode, distributed) => {
  let t: TestApp;
  let origin: { host: string; port: number };

  beforeAll(async () => {
    t = await createTestApp({ distributed });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    origin = { host: '127.0.0.1', port: (t.app.server.address() as AddressInfo).port };
  });
  afterAll(async () => t?.close());

  function overSocket(sent: Sent): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const headers = { 'content-type': 'application/json', ...sent.headers };
      const req = httpRequest({ ...origin, method: sent.method ?? 'POST', path: sent.path, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers as Record<string, string>, body: Buffer.concat(chunks).toString() }));
      });
      req.on('error', reject);
      // An answer that never comes (a throw in the fast path) fails here, not at the test's timeout.
      req.setTimeout(10_000, () => req.destroy(new Error('no answer within 10 s')));
      if (typeof sent.body === 'string') {
        req.setHeader('content-length', Buffer.byteLength(sent.body));
        req.end(sent.body);
      } else {
        for (const chunk of sent.body) req.write(chunk);
        req.end();
      }
    });
  }

  async function byFastify(sent: Sent): Promise<Answer> {
    const response = await t.app.inject({
      method: sent.method ?? 'POST', url: sent.path,
      headers: { 'content-type': 'application/json', ...sent.headers },
      payload: typeof sent.body === 'string' ? sent.body : sent.body.join(''),
    });
    return { status: response.statusCode, headers: response.headers as unknown as Record<string, string>, body: response.body };
  }

  async function fastAnswers(status: number): Promise<number> {
    return metricSample(await t.ctx.metrics.registry.metrics(), `stampede_claim_fast_path_answers_total{status="${status}"}`) ?? 0;
  }

  /** A sold-out event of one coupon (alice holds it), known as such to this process. */
  async function soldOutEvent(headers: Record<string, string>, overrides: Record<string, unknown> = {}): Promise<string> {
    const templateId = await createTemplate(t.app, headers, { totalQuantity: 1, perUserLimit: 1, ...overrides });
    const first = await overSocket({ path: `/v1/coupon-templates/${templateId}/claims`, headers, body: JSON.stringify({ userId: 'alice' }) });
    expect(first.status, first.body).toBe(201);
    const template = t.ctx.claimTemplates.cachedForPartner(await partnerOf(headers), templateId)!;
    // Distributed: the flag is learned from the gate's next refusal (or pushed by Redis).
    await waitFor(async () => {
      if (t.ctx.claimGate.knownRefusal?.(template, 'probe') !== undefined) return true;
      await byFastify({ path: `/v1/coupon-templates/${templateId}/claims`, headers, body: JSON.stringify({ userId: 'learner' }) });
      return false;
    }, { what: 'the event to be known as sold out' });
    return templateId;
  }

  async function partnerOf(headers: Record<string, string>): Promise<string> {
    return t.ctx.keys.cached(headers['x-api-key']!)!.partnerId;
  }

  it('answers a known refusal before Fastify, as Fastify answers it', async () => {
    const partner = await createPartner(t.app);
    const fastBefore = await fastAnswers(409);
    const templateId = await soldOutEvent(partner.headers);
    expect(await fastAnswers(409)).toBe(fastBefore);
    const path = `/v1/coupon-templates/${templateId}/claims`;

    for (const userId of ['bob', 'alice']) {
      const sent: Sent = { path, headers: { ...partner.headers, 'x-request-id': `fast-${userId}` }, body: JSON.stringify({ userId }) };
      const before = await fastAnswers(409);
      const fast = await overSocket(sent);
      expect(await fastAnswers(409), `${userId}: answered by the fast path`).toBe(before + 1);
      const fastify = await byFastify(sent);
      expect(fast.status).toBe(409);
      expect([fast.status, fast.body]).toEqual([fastify.status, fastify.body]);
      expect(comparable(fast.headers)).toEqual(comparable(fastify.headers));
      expect(fast.headers['x-request-id']).toBe(`fast-${userId}`);
    }
    const generated = await overSocket({ path, headers: partner.headers, body: JSON.stringify({ userId: 'carol' }) });
    expect(generated.headers['x-request-id']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);

    // Counted as Fastify's path counts: the route's HTTP metrics and the claim outcomes.
    const text = await t.ctx.metrics.registry.metrics();
    expect(metricSample(text, 'stampede_http_request_duration_seconds_count{route="/v1/coupon-templates/:id/claims",method="POST",status_class="4xx"}')).toBeGreaterThanOrEqual(3);
    expect(metricSample(text, `stampede_claims_total{template="${templateId}",outcome="sold_out"}`)).toBeGreaterThanOrEqual(3);
  });

  it('answers a claim the gate decides: the 201 and its coupon, as Fastify answers them', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: 10, perUserLimit: 1 });
    const path = `/v1/coupon-templates/${templateId}/claims`;
    // The first claim loads the template into this process's cache: Fastify's path.
    const loading = await overSocket({ path, headers: partner.headers, body: JSON.stringify({ userId: 'ann' }) });
    expect(loading.status, loading.body).toBe(201);
    expect(t.ctx.claimTemplates.cachedForPartner(await partnerOf(partner.headers), templateId)).toBeDefined();

    const before = await fastAnswers(201);
    const fast = await overSocket({ path, headers: { ...partner.headers, 'x-request-id': 'fast-dave' }, body: JSON.stringify({ userId: 'dave' }) });
    expect(fast.status, fast.body).toBe(201);
    expect(await fastAnswers(201), 'dave: answered by the fast path').toBe(before + 1);
    const fastify = await byFastify({ path, headers: partner.headers, body: JSON.stringify({ userId: 'erin' }) });
    expect(fastify.status, fastify.body).toBe(201);
    // Byte for byte but for the coupon and the user: same fields in the same order, same headers.
    const [fastBody, fastifyBody] = [JSON.parse(fast.body), JSON.parse(fastify.body)];
    expect(Object.keys(fastBody)).toEqual(Object.keys(fastifyBody));
    expect({ ...fastBody, couponId: 'c', userId: 'u' }).toEqual({ ...fastifyBody, couponId: 'c', userId: 'u' });
    expect(fastBody.userId).toBe('dave');
    expect(comparable(fast.headers)).toEqual(comparable(fastify.headers));
    expect(fast.headers['x-request-id']).toBe('fast-dave');
    // The coupon the 201 named is dave's, in the gate's count and (once persisted) in PostgreSQL.
    await drainClaims(t.ctx, templateId);
    expect((await t.ctx.db.query('SELECT user_id FROM coupons WHERE id = $1', [fastBody.couponId])).rows).toEqual([{ user_id: 'dave' }]);
    const text = await t.ctx.metrics.registry.metrics();
    expect(metricSample(text, `stampede_claims_total{template="${templateId}",outcome="issued"}`)).toBe(3);
    expect(metricSample(text, 'stampede_http_request_duration_seconds_count{route="/v1/coupon-templates/:id/claims",method="POST",status_class="2xx"}')).toBeGreaterThanOrEqual(3);
  });

  it('answers an error of the gate as Fastify\'s error handler does: catalog code, Retry-After, a 500 that says nothing', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: 10, perUserLimit: 1 });
    const path = `/v1/coupon-templates/${templateId}/claims`;
    expect((await overSocket({ path, headers: partner.headers, body: JSON.stringify({ userId: 'ann' }) })).status).toBe(201);
    const gate = t.ctx.claimGate;
    const claim = gate.claim.bind(gate);
    const failures: Array<[string, Error]> = [
      ['not replicated', new AppError('CLAIM_NOT_REPLICATED', 'The claim reached 0 of the 1 Redis replicas it must.')],
      ['a backing service gone', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })],
      ['a bug', new Error('something no one expected')],
    ];
    try {
      for (const [what, failure] of failures) {
        // The gate's call fails as a lost connection or a failed WAIT would make it fail.
        gate.claim = async () => { throw failure; };
        const statusBefore = (await Promise.all([503, 500].map(fastAnswers))).reduce((sum, count) => sum + count, 0);
        const fast = await overSocket({ path, headers: partner.headers, body: JSON.stringify({ userId: 'gil' }) });
        const statusAfter = (await Promise.all([503, 500].map(fastAnswers))).reduce((sum, count) => sum + count, 0);
        expect(statusAfter, `${what}: answered by the fast path`).toBe(statusBefore + 1);
        const fastify = await byFastify({ path, headers: partner.headers, body: JSON.stringify({ userId: 'gil' }) });
        expect([fast.status, fast.body], what).toEqual([fastify.status, fastify.body]);
        expect(comparable(fast.headers), what).toEqual(comparable(fastify.headers));
      }
    } finally {
      gate.claim = claim;
    }
    // A throw before the gate (a bug) costs that request a 500, as a throwing Fastify handler does, not the process.
    const knownRefusal = gate.knownRefusal!.bind(gate);
    try {
      gate.knownRefusal = () => { throw new Error('a bug before the gate'); };
      const fast = await overSocket({ path, headers: partner.headers, body: JSON.stringify({ userId: 'gil' }) });
      const fastify = await byFastify({ path, headers: partner.headers, body: JSON.stringify({ userId: 'gil' }) });
      expect([fast.status, fast.body]).toEqual([500, fastify.body]);
      expect(fastify.status).toBe(500);
    } finally {
      gate.knownRefusal = knownRefusal;
    }
    expect(JSON.parse((await overSocket({ path, headers: partner.headers, body: JSON.stringify({ userId: 'gil' }) })).body).status).toBe('ISSUED');
  });

  it('hands every other request to Fastify, which answers it as it would without the fast path', async () => {
    const partner = await createPartner(t.app);
    const templateId = await soldOutEvent(partner.headers);
    const path = `/v1/coupon-templates/${templateId}/claims`;
    const sends: Array<[string, Sent]> = [
      ['an extra property', { path, headers: partner.headers, body: '{"userId":"zed","extra":1}' }],
      ['no userId', { path, headers: partner.headers, body: '{}' }],
      ['not JSON', { path, headers: partner.headers, body: '{"userId":' }],
      ['a __proto__ key', { path, headers: partner.headers, body: '{"userId":"zed","__proto__":{"admin":true}}' }],
      ['a number for userId', { path, headers: partner.headers, body: '{"userId":7}' }],
      ['a control character in userId', { path, headers: partner.headers, body: JSON.stringify({ userId: 'z\u0007' }) }],
      ['a body over 1 KB', { path, headers: partner.headers, body: JSON.stringify({ userId: 'z'.repeat(2_000) }) }],
      ['text/plain', { path, headers: { ...partner.headers, 'content-type': 'text/plain' }, body: '{"userId":"zed"}' }],
      ['no API key', { path, headers: {}, body: '{"userId":"zed"}' }],
      ['an unknown API key', { path, headers: { 'x-api-key': `${partner.apiKey.slice(0, -4)}0000` }, body: '{"userId":"zed"}' }],
      ['an Idempotency-Key', { path, headers: { ...partner.headers, 'idempotency-key': `fast-path-${Date.now()}` }, body: '{"userId":"zed"}' }],
      ['a query string', { path: `${path}?via=fast`, headers: partner.headers, body: '{"userId":"zed"}' }],
      ['an upper-case id', { path: path.toUpperCase().replace('/V1/COUPON-TEMPLATES/', '/v1/coupon-templates/').replace('/CLAIMS', '/claims'), headers: partner.headers, body: '{"userId":"zed"}' }],
      ['an unknown template', { path: '/v1/coupon-templates/01890000-0000-7000-8000-000000000000/claims', headers: partner.headers, body: '{"userId":"zed"}' }],
      ['GET', { method: 'GET', path, headers: partner.headers, body: '' }],
    ];
    for (const [what, sent] of sends) {
      const before = [await fastAnswers(409), await fastAnswers(429)];
      const fast = await overSocket(sent);
      expect([await fastAnswers(409), await fastAnswers(429)], `${what}: not answered by the fast path`).toEqual(before);
      const fastify = await byFastify(sent);
      expect([fast.status, fast.body], what).toEqual([fastify.status, fastify.body]);
    }
    // A chunked body (no Content-Length) is Fastify's too.
    const before = await fastAnswers(409);
    const chunked = await overSocket({ path, headers: partner.headers, body: ['{"userId":', '"zed"}'] });
    expect(await fastAnswers(409)).toBe(before);
    expect(chunked.status, chunked.body).toBe(409);
  });

  it('keeps the API key\'s rate limit: 429 RATE_LIMITED with Retry-After, answered on the fast path', async () => {
    const partner = await createPartner(t.app);
    const path = `/v1/coupon-templates/${await soldOutEvent(partner.headers)}/claims`;
    const patched = await t.app.inject({ method: 'PATCH', url: `/v1/partners/${partner.id}`, headers: adminHeaders, payload: { rateLimitPerSecond: 2 } });
    expect(patched.statusCode, patched.body).toBe(200);
    const before = await fastAnswers(429);
    const answers: Answer[] = [];
    for (let i = 0; i < 10; i++) answers.push(await overSocket({ path, headers: partner.headers, body: JSON.stringify({ userId: `rl-${i}` }) }));
    const limited = answers.filter((answer) => answer.status === 429);
    // 10 claims in at most two one-second windows: at most 4 admitted.
    expect(limited.length, JSON.stringify(answers.map((answer) => answer.status))).toBeGreaterThanOrEqual(6);
    for (const answer of limited) {
      expect(JSON.parse(answer.body).error).toMatchObject({ code: 'RATE_LIMITED', message: expect.stringMatching(/^Rate limit of 2 requests per second exceeded/) });
      expect(Number(answer.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
    expect(answers.filter((answer) => answer.status !== 429).every((answer) => answer.status === 409)).toBe(true);
    // The first claim after the change looked the key up again (Fastify's path); the rest are the fast path's.
    expect(await fastAnswers(429) - before).toBeGreaterThanOrEqual(limited.length - 1);
  });

  it('keeps the event\'s per-user throttle: 429 CLAIM_THROTTLED with Retry-After, answered on the fast path', async () => {
    const partner = await createPartner(t.app);
    const path = `/v1/coupon-templates/${await soldOutEvent(partner.headers, { claimThrottle: { perUserPerSecond: 1 } })}/claims`;
    const before = await fastAnswers(429);
    const answers: Answer[] = [];
    for (let i = 0; i < 5; i++) answers.push(await overSocket({ path, headers: partner.headers, body: JSON.stringify({ userId: 'zoe' }) }));
    const throttled = answers.filter((answer) => answer.status === 429);
    // 5 attempts in at most two windows: at most 2 pass the throttle.
    expect(throttled.length, JSON.stringify(answers.map((answer) => answer.status))).toBeGreaterThanOrEqual(3);
    for (const answer of throttled) {
      expect(JSON.parse(answer.body).error.code).toBe('CLAIM_THROTTLED');
      expect(Number(answer.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
    expect(await fastAnswers(429) - before).toBe(throttled.length);
  });
});
