// No input gives a 5xx, and every refusal is ours: odd text, timestamps, path ids and bodies answer
// catalogued 4xx in the `{error: {code, message}}` shape, also when Node's HTTP parser or Fastify's
// router refuses before any handler runs (a real socket for those).
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminHeaders, createPartner, createTestApp, templateBody, type TestApp } from '../../test/harness/test-app.ts';
import { ERROR_CATALOG } from '../errors.ts';

let t: TestApp;
beforeAll(async () => { t = await createTestApp(); });
afterAll(async () => t.close());

let keySeq = 0;
const idem = (headers: Record<string, string>) => ({ ...headers, 'idempotency-key': `edges-${Date.now()}-${keySeq++}` });

/** The response is a refusal of the catalog, in its shape, with this status and code. */
function expectRefusal(response: { statusCode: number; body: string }, status: number, code: keyof typeof ERROR_CATALOG) {
  expect(response.statusCode, response.body).toBe(status);
  const body = JSON.parse(response.body) as { error: { code: string; message: string } };
  expect(Object.keys(body)).toEqual(['error']);
  expect(body.error.code).toBe(code);
  expect(ERROR_CATALOG[code].status).toBe(status);
  expect(typeof body.error.message).toBe('string');
}

describe('free text', () => {
  it('refuses NUL and unpaired surrogates in every free-text field with 400 VALIDATION_FAILED', async () => {
    const partner = await createPartner(t.app);
    await t.app.inject({ method: 'POST', url: '/v1/points/earn', headers: idem(partner.headers), payload: { userId: 'alice', amount: 100 } });
    const fields: Array<[string, string, Record<string, string>, (bad: string) => Record<string, unknown>]> = [
      ['partner name', '/v1/partners', adminHeaders, (bad) => ({ name: `p${bad}` })],
      ['template name', '/v1/coupon-templates', partner.headers, (bad) => templateBody({ name: `t${bad}` })],
      ['earn reason', '/v1/points/earn', partner.headers, (bad) => ({ userId: 'alice', amount: 1, reason: `r${bad}` })],
      ['earn orderId', '/v1/points/earn', partner.headers, (bad) => ({ userId: 'alice', amount: 1, orderId: `o${bad}` })],
      ['use reason', '/v1/points/use', partner.headers, (bad) => ({ userId: 'alice', amount: 1, reason: `r${bad}` })],
      ['use orderId', '/v1/points/use', partner.headers, (bad) => ({ userId: 'alice', amount: 1, orderId: `o${bad}` })],
      ['transfer reason', '/v1/points/transfer', partner.headers, (bad) => ({ fromUserId: 'alice', toUserId: 'bob', amount: 1, reason: `r${bad}` })],
    ];
    for (const [name, url, headers, body] of fields) {
      for (const bad of ['\u0000', 'a\u0000b', '\u0007', '\u009b', '\ud800']) {
        const response = await t.app.inject({ method: 'POST', url, headers: idem(headers), payload: body(bad) });
        expect(response.statusCode, `${name} ${JSON.stringify(bad)}: ${response.body}`).toBe(400);
        expectRefusal(response, 400, 'VALIDATION_FAILED');
      }
    }
    // Text that is not a control character passes: emoji, accents, quotes.
    const fine = await t.app.inject({
      method: 'POST', url: '/v1/points/earn', headers: idem(partner.headers),
      payload: { userId: 'alice', amount: 1, reason: 'Günstig 😀 "quoted" \' OR 1=1 --', orderId: 'ordre n° 7' },
    });
    expect(fine.statusCode, fine.body).toBe(201);
  });
});

describe('timestamps', () => {
  const refused = [
    '2030-12-31T23:59:60Z', // leap second: Date cannot hold it
    '0000-01-01T00:00:00Z', '1969-12-31T23:59:59Z',
    '9999-12-31T23:59:59-23:59', // year 10000 in UTC
    '1970-01-01T00:30:00+01:00', // 1969 in UTC
    '2030-02-30T00:00:00Z', '+275760-09-13T00:00:00Z',
  ];

  it('refuses what JavaScript or PostgreSQL cannot represent with 400 on earn, templates and accruals', async () => {
    const partner = await createPartner(t.app);
    for (const at of refused) {
      const earn = await t.app.inject({ method: 'POST', url: '/v1/points/earn', headers: idem(partner.headers), payload: { userId: 'alice', amount: 1, expiresAt: at } });
      expectRefusal(earn, 400, 'VALIDATION_FAILED');
      for (const field of ['claimStartsAt', 'claimEndsAt']) {
        expectRefusal(await t.app.inject({ method: 'POST', url: '/v1/coupon-templates', headers: partner.headers, payload: templateBody({ [field]: at }) }), 400, 'VALIDATION_FAILED');
      }
      const validity = { type: 'ABSOLUTE', validFrom: new Date().toISOString(), validUntil: at };
      expectRefusal(await t.app.inject({ method: 'POST', url: '/v1/coupon-templates', headers: partner.headers, payload: templateBody({ validity }) }), 400, 'VALIDATION_FAILED');
      const item = { userId: 'alice', amount: 1, idempotencyKey: 'k-1' };
      expectRefusal(await t.app.inject({ method: 'POST', url: '/v1/points/accruals', headers: partner.headers, payload: { items: [item], scheduledAt: at } }), 400, 'VALIDATION_FAILED');
      // One bad item refuses the request at acceptance, naming the item; nothing is accepted to fail later.
      const accrual = await t.app.inject({ method: 'POST', url: '/v1/points/accruals', headers: partner.headers, payload: { items: [item, { ...item, idempotencyKey: 'k-2', expiresAt: at }] } });
      expectRefusal(accrual, 400, 'VALIDATION_FAILED');
      expect(accrual.json().error.details[0]).toMatchObject({ index: 1 });
    }
    const { rows } = await t.ctx.db.query('SELECT count(*)::int AS n FROM jobs WHERE partner_id = $1', [partner.id]);
    expect(rows[0].n).toBe(0);
  });

  it('accepts the far end of the range, offsets included', async () => {
    const partner = await createPartner(t.app);
    for (const at of ['9999-12-31T23:59:59Z', '9999-12-31T23:59:59.999+00:00', '9999-12-31T23:59:59+01:00']) {
      const earn = await t.app.inject({ method: 'POST', url: '/v1/points/earn', headers: idem(partner.headers), payload: { userId: 'alice', amount: 1, expiresAt: at } });
      expect(earn.statusCode, `${at}: ${earn.body}`).toBe(201);
      expect(earn.json().expiresAt).toBe(new Date(at).toISOString());
    }
  });
});

describe('path parameters', () => {
  it('serves a 128-character user id on every /v1/users/{userId}/… route; longer is a catalogued 400 or 414', async () => {
    const partner = await createPartner(t.app);
    const userId = `u${'x'.repeat(126)}~`;
    expect(userId).toHaveLength(128);
    expect((await t.app.inject({ method: 'POST', url: '/v1/points/earn', headers: idem(partner.headers), payload: { userId, amount: 7 } })).statusCode).toBe(201);
    const balance = await t.app.inject({ url: `/v1/users/${userId}/points`, headers: partner.headers });
    expect(balance.statusCode, balance.body).toBe(200);
    expect(balance.json().balance).toBe(7);
    const history = await t.app.inject({ url: `/v1/users/${userId}/points/transactions`, headers: partner.headers });
    expect(history.statusCode, history.body).toBe(200);
    expect(history.json().items).toHaveLength(1);
    expect((await t.app.inject({ url: `/v1/users/${userId}/coupons`, headers: partner.headers })).statusCode).toBe(200);
    // Percent-encoded to three times its length, it still reaches the route.
    const encoded = await t.app.inject({ url: `/v1/users/${'%7E'.repeat(128)}/points`, headers: partner.headers });
    expect(encoded.statusCode, encoded.body).toBe(200);

    expectRefusal(await t.app.inject({ url: `/v1/users/${'y'.repeat(129)}/points`, headers: partner.headers }), 400, 'VALIDATION_FAILED');
    expectRefusal(await t.app.inject({ url: `/v1/users/${'y'.repeat(5000)}/points`, headers: partner.headers }), 414, 'URI_TOO_LONG');
    expectRefusal(await t.app.inject({ url: `/v1/coupon-templates/${'y'.repeat(5000)}`, headers: partner.headers }), 414, 'URI_TOO_LONG');
    expectRefusal(await t.app.inject({ url: '/v1/coupons/%E0%A4%A', headers: partner.headers }), 400, 'MALFORMED_REQUEST');
  });
});

describe('framework refusals', () => {
  it('answers unknown routes, other methods, bad media types and bodies from the catalog', async () => {
    const partner = await createPartner(t.app);
    expectRefusal(await t.app.inject({ url: '/v1/nothing-here' }), 404, 'ROUTE_NOT_FOUND');
    const put = await t.app.inject({ method: 'PUT', url: '/v1/points/earn', headers: partner.headers });
    expectRefusal(put, 405, 'METHOD_NOT_ALLOWED');
    expect(put.headers.allow).toBe('POST');
    const json = (payload: string, contentType = 'application/json') => t.app.inject({
      method: 'POST', url: '/v1/points/earn', headers: { ...idem(partner.headers), 'content-type': contentType }, payload,
    });
    expectRefusal(await json('{"userId":'), 400, 'MALFORMED_JSON');
    expectRefusal(await json(''), 400, 'MALFORMED_JSON');
    expectRefusal(await json('{"__proto__":{"admin":true}}'), 400, 'MALFORMED_JSON');
    expectRefusal(await json(`${'['.repeat(10_000)}${']'.repeat(10_000)}`), 400, 'MALFORMED_JSON');
    // Brackets inside strings, escaped quotes among them, are text, not nesting.
    expect((await json(JSON.stringify({ userId: 'a', amount: 1, reason: '{["\\'.repeat(100) }))).statusCode).toBe(201);
    expectRefusal(await json('<earn/>', 'application/xml'), 415, 'UNSUPPORTED_MEDIA_TYPE');
    expectRefusal(await json(JSON.stringify({ userId: 'a', amount: 1, reason: 'x'.repeat(2_000_000) })), 413, 'PAYLOAD_TOO_LARGE');
  });
});

describe('refusals of the HTTP parser and the router, on a real socket', () => {
  let port: number;
  beforeAll(async () => {
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    port = (t.app.server.address() as AddressInfo).port;
  });

  /** Sends raw bytes; resolves with the status line's code and the body once the server closes. */
  function raw(request: string): Promise<{ statusCode: number; body: string }> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      let data = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => { data += chunk; });
      socket.on('error', reject);
      socket.on('close', () => {
        const status = /^HTTP\/1\.1 (\d{3}) /.exec(data);
        if (!status) reject(new Error(`no HTTP answer: ${JSON.stringify(data.slice(0, 200))}`));
        else resolve({ statusCode: Number(status[1]), body: data.slice(data.indexOf('\r\n\r\n') + 4) });
      });
      socket.end(request);
    });
  }

  it('answers a 100 kB query string and a 20 kB header with 431 HEADERS_TOO_LARGE', async () => {
    expectRefusal(await raw(`GET /v1/coupon-templates?q=${'a'.repeat(100_000)} HTTP/1.1\r\nHost: x\r\n\r\n`), 431, 'HEADERS_TOO_LARGE');
    expectRefusal(await raw(`GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`), 431, 'HEADERS_TOO_LARGE');
  });

  it('answers a malformed request with 400 MALFORMED_REQUEST', async () => {
    expectRefusal(await raw('NOT HTTP AT ALL\r\n\r\n'), 400, 'MALFORMED_REQUEST');
    expectRefusal(await raw('GET /health/live HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n'), 400, 'MALFORMED_REQUEST');
  });

  it('answers a 5,000-character path id with 414 URI_TOO_LONG and a 128-character user id with the route', async () => {
    const partner = await createPartner(t.app);
    const long = await fetch(`http://127.0.0.1:${port}/v1/users/${'z'.repeat(5_000)}/points`, { headers: partner.headers });
    expectRefusal({ statusCode: long.status, body: await long.text() }, 414, 'URI_TOO_LONG');
    const fits = await fetch(`http://127.0.0.1:${port}/v1/users/${'z'.repeat(128)}/points`, { headers: partner.headers });
    expect(fits.status).toBe(200);
  });
});

describe('readiness', () => {
  it('reports a failed probe with a catalogued reason, not the driver error text', async () => {
    const down = await createTestApp({ env: { DATABASE_URL: 'postgres://stampede:secret@127.0.0.1:1/nowhere' } });
    try {
      const ready = await down.app.inject({ url: '/health/ready' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json().checks.database).toEqual({ status: 'down', error: 'SERVICE_UNAVAILABLE: A backing service is unavailable; retry shortly.' });
      expect(ready.body).not.toMatch(/ECONNREFUSED|127\.0\.0\.1/);
    } finally {
      await down.close();
    }
  });
});
