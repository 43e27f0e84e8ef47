// The bad-input suite, driven by the served OpenAPI document: for every operation, a valid request
// first, then mutations of each path parameter, query parameter, header and body field (wrong
// types, missing and unknown fields, edge numbers, empty and huge strings, control characters,
// emoji, injection-looking strings, malformed and deeply nested JSON, odd path ids), sent over real
// HTTP to a listening server. Every answer must be: no 5xx, no dropped connection; a status the
// document lists for the operation; a body valid against the documented schema (ajv); a refusal
// in the catalog shape with a catalog code of that status. Afterwards the service is still ready
// and the data made before the mutations is unchanged.
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ERROR_CATALOG } from '../../src/errors.ts';
import { createSourceDatabase, type TestSourceDatabase } from '../harness/sql-source.ts';
import { adminHeaders, createPartner, createTestApp, templateBody, type TestApp } from '../harness/test-app.ts';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
interface Parameter { in: 'path' | 'query' | 'header'; name: string; required?: boolean }
interface Operation {
  operationId: string;
  parameters?: Parameter[];
  requestBody?: { required?: boolean; content: Record<string, unknown> };
  responses: Record<string, { content?: Record<string, { schema: object }> }>;
}
interface Document { paths: Record<string, Record<string, Operation>>; components: object }

/** A request as sent: path parameters already in `path` (encoded), body as raw text. */
interface Sent {
  readonly method: string;
  readonly path: string;
  readonly query?: string;
  readonly headers: Record<string, string>;
  readonly body?: string;
}
interface Case { readonly operation: string; readonly mutation: string; readonly request: Sent }
interface Problem { readonly operation: string; readonly mutation: string; readonly problem: string }

/** What a valid request of an operation holds, before mutation. */
interface Valid {
  readonly params?: Record<string, string>;
  readonly query?: Record<string, string>;
  readonly headers?: Record<string, string>;
  readonly body?: Json;
  /** Send only the structural body mutations (malformed JSON and the like), refused before the handler. */
  readonly structuralOnly?: string;
}

// Values a JSON field is set to, each in turn.
const ODD_JSON: ReadonlyArray<[string, Json]> = [
  ['true', true], ['object', {}], ['array', []], ['null', null],
  ['0', 0], ['-1', -1], ['2^31', 2 ** 31], ['2^53', 2 ** 53], ['1e308', 1e308], ['1.5', 1.5], ['-0.0001', -0.0001],
  ['empty string', ''], ['100,000 chars', 'x'.repeat(100_000)], ['NUL', 'a\u0000b'], ['control chars', 'a\u0007\u001b[31mb'],
  ['newline', 'a\r\nb'], ['emoji', '😀🎉'], ['RTL override', '\u202Eevil'], ['lone surrogate', 'a\ud800b'],
  ['SQL injection', "' OR 1=1; DROP TABLE partners; --"], ['HTML', '<script>alert(1)</script>'], ['template', '${7*7}{{7*7}}%s%n'],
  ['path traversal', '../../etc/passwd'], ['numeric string', '1'], ['leap second', '2030-12-31T23:59:60Z'],
  ['year 0', '0000-01-01T00:00:00Z'], ['far offset', '9999-12-31T23:59:59-23:59'], ['nil uuid', '00000000-0000-0000-0000-000000000000'],
  ['129 chars', 'u'.repeat(129)],
];

// Values a path or query parameter is set to (strings; `raw` ones are sent unencoded).
const ODD_PARAMS: ReadonlyArray<[string, string, boolean?]> = [
  ['0', '0'], ['-1', '-1'], ['2^31', '2147483648'], ['2^53', '9007199254740992'], ['1e308', '1e308'], ['1.5', '1.5'],
  ['empty', ''], ['nil uuid', '00000000-0000-0000-0000-000000000000'], ['random uuid', randomUUID()],
  ['emoji', '😀'], ['NUL', '\u0000'], ['control chars', '\u0007\u001b'], ['SQL injection', "' OR '1'='1"], ['HTML', '<script>'],
  ['dot dot', '..'], ['encoded slash', 'a/b'], ['malformed escape', '%E0%A4%A', true], ['lone percent', '%', true],
  ['101 chars', 'a'.repeat(101)], ['128 chars', 'a'.repeat(128)], ['5,000 chars', 'a'.repeat(5_000)], ['uuid with spaces', ` ${randomUUID()} `],
];

// Whole-body mutations of operations that take a body: [label, content-type, raw body].
const ODD_BODIES: ReadonlyArray<[string, string | undefined, string | undefined]> = [
  ['malformed JSON', 'application/json', '{"a":'], ['trailing garbage', 'application/json', '{}x'],
  ['empty JSON body', 'application/json', ''], ['no body, JSON type', 'application/json', undefined],
  ['JSON null', 'application/json', 'null'], ['JSON array', 'application/json', '[]'], ['JSON string', 'application/json', '"s"'],
  ['JSON number', 'application/json', '1e999'], ['empty object', 'application/json', '{}'],
  ['deeply nested arrays', 'application/json', `${'['.repeat(50_000)}${']'.repeat(50_000)}`],
  ['deeply nested objects', 'application/json', `${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}`],
  ['__proto__ key', 'application/json', '{"__proto__":{"admin":true}}'], ['constructor key', 'application/json', '{"constructor":{"prototype":{"x":1}}}'],
  ['invalid UTF-8', 'application/json', '{"a":"\udc80"}'], ['2 MB of JSON', 'application/json', `{"a":"${'x'.repeat(2_100_000)}"}`],
  ['XML', 'application/xml', '<a/>'], ['form', 'application/x-www-form-urlencoded', 'a=1'], ['no content type', undefined, '{}'],
  ['CSV', 'text/csv', 'user_id,email\r\nu100,a@example.com\r\n'], ['JSON charset latin1', 'application/json; charset=latin1', '{}'],
];

const ajv = new Ajv2020({ strict: false, allErrors: false });
(addFormatsModule as unknown as (ajv: Ajv2020) => void)(ajv);

describe('bad input, from the OpenAPI document', () => {
  let t: TestApp;
  let http: Pool;
  let document: Document;
  let fixtures: Awaited<ReturnType<typeof createFixtures>>;
  let source: TestSourceDatabase;
  beforeAll(async () => {
    source = await createSourceDatabase(inject('databaseUrl'));
    t = await createTestApp();
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const address = t.app.server.address();
    if (!address || typeof address === 'string') throw new Error('not listening');
    http = new Pool(`http://127.0.0.1:${address.port}`, { connections: 8, headersTimeout: 30_000, bodyTimeout: 30_000 });
    document = (await t.app.inject({ url: '/docs/json' })).json<Document>();
    fixtures = await createFixtures(t, source);
  });
  afterAll(async () => {
    await http?.close();
    await t?.close();
    await source?.drop();
  });

  it('answers every mutation of every operation within the contract, and keeps earlier data', async () => {
    const kept = await snapshot(t, fixtures);
    const valid = validRequests(fixtures);
    const operations = Object.entries(document.paths).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({ path, method: method.toUpperCase(), op })));
    const missing = operations.filter(({ op }) => !valid[op.operationId]).map(({ op }) => op.operationId);
    expect(missing, 'operations of the document without a valid request here').toEqual([]);

    const cases = operations.flatMap(({ path, method, op }) => casesFor(path, method, op, valid[op.operationId]!, fixtures));
    const problems: Problem[] = [];
    const statuses = new Map<string, number>();
    const validators = new Map<string, ValidateFunction>();
    const started = performance.now();
    const durations: Array<[number, string]> = [];
    await runAll(cases, 8, async (c) => {
      const begun = performance.now();
      try { await check(c); } finally { durations.push([performance.now() - begun, `${c.operation} [${c.mutation}]`]); }
    });
    async function check(c: Case) {
      const operation = operations.find(({ op }) => op.operationId === c.operation)!.op;
      const report = (problem: string) => { problems.push({ operation: c.operation, mutation: c.mutation, problem }); };
      let status: number;
      let text: string;
      let contentType: string;
      try {
        const answer = await http.request({
          method: c.request.method as 'GET', path: c.request.path + (c.request.query ? `?${c.request.query}` : ''),
          headers: c.request.headers, ...(c.request.body === undefined ? {} : { body: c.request.body }),
        });
        status = answer.statusCode;
        contentType = String(answer.headers['content-type'] ?? '');
        // A live stream (watchCouponTemplate) never ends: its status and type are what is checked.
        if (contentType.startsWith('text/event-stream')) {
          answer.body.destroy();
          text = '';
        } else {
          text = await answer.body.text();
        }
      } catch (error) {
        return report(`connection dropped: ${(error as Error).message}`);
      }
      statuses.set(String(status), (statuses.get(String(status)) ?? 0) + 1);
      // The mutations are measured against a request that works.
      if (c.mutation === 'valid' && status >= 300) report(`the valid request answered ${status}: ${text.slice(0, 200)}`);
      if (status >= 500) report(`${status} ${text.slice(0, 200)}`);
      const documented = operation.responses[String(status)];
      if (!documented) return report(`status ${status} is not documented: ${text.slice(0, 200)}`);
      const schema = documented.content?.['application/json']?.schema;
      if (!schema) return;
      if (!contentType.startsWith('application/json')) return report(`${status} answered ${contentType || 'no content type'}: ${text.slice(0, 200)}`);
      let body: unknown;
      try { body = JSON.parse(text); } catch { return report(`${status} body is not JSON: ${text.slice(0, 200)}`); }
      const key = `${c.operation} ${status}`;
      const validate = validators.get(key) ?? ajv.compile({ allOf: [schema], components: document.components });
      validators.set(key, validate);
      if (!validate(body)) report(`${status} body does not match the documented schema: ${ajv.errorsText(validate.errors)} in ${text.slice(0, 200)}`);
      if (status >= 400) {
        const code = (body as { error?: { code?: unknown } }).error?.code;
        const entry = typeof code === 'string' ? (ERROR_CATALOG as Record<string, { status: number }>)[code] : undefined;
        if (!entry) report(`${status} code ${String(code)} is not in the catalog`);
        else if (entry.status !== status) report(`${status} carries ${String(code)}, a ${entry.status} in the catalog`);
      }
    }
    const seconds = (performance.now() - started) / 1000;

    const byStatus = [...statuses].sort(([a], [b]) => a.localeCompare(b)).map(([s, n]) => `${s}: ${n}`).join(', ');
    console.log(`bad-input: ${cases.length} requests to ${operations.length} operations in ${seconds.toFixed(1)} s; ${byStatus}; `
      + `${problems.length} problems`);
    if (process.env.BAD_INPUT_REPORT) {
      writeFileSync(process.env.BAD_INPUT_REPORT, JSON.stringify({ problems, slowest: durations.sort(([a], [b]) => b - a).slice(0, 30) }, null, 1));
    }
    for (const p of problems.slice(0, 60)) console.log(`  ${p.operation} [${p.mutation}]: ${p.problem}`);

    expect(problems.map((p) => `${p.operation} [${p.mutation}]: ${p.problem.slice(0, 160)}`)).toEqual([]);

    expect((await t.app.inject({ url: '/health/ready' })).statusCode).toBe(200);
    expect(await snapshot(t, fixtures)).toEqual(kept);
  }, 180_000);
});

/** Everything the valid requests need: a partner and what it owns, and what the mutations must not change. */
async function createFixtures(t: TestApp, source: TestSourceDatabase) {
  const inject = async (method: string, url: string, headers: Record<string, string>, payload?: object) => {
    const response = await t.app.inject({ method: method as 'POST', url, headers, ...(payload === undefined ? {} : { payload }) });
    if (response.statusCode >= 300) throw new Error(`${method} ${url}: ${response.statusCode} ${response.body}`);
    return response.json<Record<string, string>>();
  };
  // No rate limit gets in the way of the thousands of requests below.
  const partner = await createPartner(t.app, { rateLimitPerSecond: 10_000_000 });
  const other = await createPartner(t.app);
  const h = partner.headers;
  const claimTemplate = await inject('POST', '/v1/coupon-templates', h, templateBody({ name: 'bad-input claims', totalQuantity: null }));
  const distributionTemplate = await inject('POST', '/v1/coupon-templates', h, templateBody({ name: 'bad-input distributions', totalQuantity: null }));
  const keptTemplate = await inject('POST', '/v1/coupon-templates', h, templateBody({ name: 'bad-input kept' }));
  const otherTemplate = await inject('POST', '/v1/coupon-templates', other.headers, templateBody());
  const changedTemplate = await inject('POST', '/v1/coupon-templates', h, templateBody({ name: 'bad-input changed' }));
  const claim = (templateId: string, userId: string) => inject('POST', `/v1/coupon-templates/${templateId}/claims`, h, { userId });
  const coupon = await claim(claimTemplate.id!, 'bi-redeemer');
  const keptCoupon = await claim(keptTemplate.id!, 'bi-kept');
  const earn = (userId: string, amount: number) => inject('POST', '/v1/points/earn', { ...h, 'idempotency-key': randomUUID() }, { userId, amount, expiresInDays: 30 });
  await earn('bi-kept', 700);
  const cancellable = await earn('bi-cancelled', 1_000); // nothing spends it: its cancel stays valid
  const job = await inject('POST', `/v1/coupon-templates/${distributionTemplate.id}/distributions`, h, { userIds: ['bi-d1', 'bi-d2'] });
  const keptJob = await inject('POST', `/v1/coupon-templates/${distributionTemplate.id}/distributions`, h, { userIds: ['bi-k1'] });
  const webhook = await inject('POST', '/v1/webhooks', h, { url: 'https://93.184.216.34/bad-input', kind: 'json', events: ['job.succeeded'] });
  const spareKey = await inject('POST', `/v1/partners/${partner.id}/api-keys`, adminHeaders);
  const patched = await createPartner(t.app);
  // Two partners with the same registered source: one whose source is read, one whose is deleted.
  const sourced = await createPartner(t.app);
  const unsourced = await createPartner(t.app);
  for (const p of [sourced, unsourced]) await inject('PUT', `/v1/partners/${p.id}/sql-source`, adminHeaders, { url: source.url });
  return {
    partner, other, claimTemplate, distributionTemplate, keptTemplate, otherTemplate, changedTemplate, coupon, keptCoupon,
    cancellable, job, keptJob, webhook, spareKey, patched, sourced, unsourced, sourceUrl: source.url,
  };
}

type Fixtures = Awaited<ReturnType<typeof createFixtures>>;

/** One valid request per operationId. */
function validRequests(f: Fixtures): Record<string, Valid> {
  const key = () => ({ 'idempotency-key': randomUUID() });
  return {
    getLiveness: {},
    getReadiness: {},
    createPartner: { body: { name: 'bad-input partner' } },
    updatePartner: { params: { id: f.patched.id }, body: { rateLimitPerSecond: 1_000 } },
    createApiKey: { params: { id: f.patched.id } },
    revokeApiKey: { params: { id: f.spareKey.id! } },
    putSqlSource: { params: { id: f.patched.id }, body: { url: f.sourceUrl } },
    getSqlSource: { params: { id: f.sourced.id } },
    deleteSqlSource: { params: { id: f.unsourced.id } },
    // It expires due points of every partner in the shared test database: only refusals are sent.
    expirePoints: { structuralOnly: 'the sweep would touch other test files\' partners' },
    createCouponTemplate: { body: templateBody({ name: 'bad-input made' }) as Json },
    listCouponTemplates: { query: { limit: '5' } },
    getCouponTemplate: { params: { id: f.claimTemplate.id! } },
    updateCouponTemplate: { params: { id: f.changedTemplate.id! }, body: { name: 'bad-input renamed' } },
    listCouponTemplateChanges: { params: { id: f.changedTemplate.id! }, query: { limit: '5' } },
    // changedTemplate has no coupons: a revocation of all of them (a mutation dropping userIds) revokes nothing.
    createRevocation: { params: { id: f.changedTemplate.id! }, body: { userIds: ['bi-nobody'] } },
    earnPoints: { headers: key(), body: { userId: 'bi-mutated', amount: 10, expiresInDays: 30, reason: 'bad input', orderId: 'o-1', pointType: 'default' } },
    usePoints: { headers: key(), body: { userId: 'bi-mutated', amount: 1, orderId: 'o-2', reason: 'bad input', pointType: 'default' } },
    cancelPointsTransaction: { params: { txId: f.cancellable.transactionId! }, headers: key(), body: { reason: 'bad input', pointType: 'default' } },
    transferPoints: { headers: key(), body: { fromUserId: 'bi-mutated', toUserId: 'bi-receiver', amount: 1, reason: 'bad input', pointType: 'default' } },
    getPointsBalance: { params: { userId: 'bi-mutated' }, query: { pointType: 'default' } },
    listPointsTransactions: { params: { userId: 'bi-mutated' }, query: { pointType: 'default', limit: '5' } },
    getCoupon: { params: { couponId: f.coupon.couponId! }, query: { orderAmount: '20000' } },
    listUserCoupons: { params: { userId: 'bi-redeemer' }, query: { limit: '5', status: 'ISSUED' } },
    redeemCoupon: { params: { couponId: f.coupon.couponId! }, body: { userId: 'bi-redeemer', orderId: 'bi-order', orderAmount: 20_000 } },
    cancelRedemption: { params: { couponId: f.coupon.couponId! }, body: { orderId: 'bi-order' } },
    claimCoupon: { params: { id: f.claimTemplate.id! }, body: { userId: 'bi-claimer' } },
    watchCouponTemplate: { params: { id: f.claimTemplate.id! } },
    createDistribution: { params: { id: f.distributionTemplate.id! }, body: { userIds: ['bi-d3', 'bi-d4'] } },
    getJob: { params: { id: f.job.jobId! } },
    listJobFailures: { params: { id: f.job.jobId! }, query: { limit: '5' } },
    listJobWebhookDeliveries: { params: { id: f.job.jobId! }, query: { limit: '5' } },
    cancelJob: { params: { id: f.job.jobId! } },
    createWebhook: { body: { url: 'https://93.184.216.34/bad-input-2', kind: 'slack', events: ['job.failed'] } },
    listWebhooks: { query: { limit: '5' } },
    deleteWebhook: { params: { id: f.webhook.id! } },
    createAccrual: { body: { items: [{ userId: 'bi-accrued', amount: 5, expiresAt: new Date(Date.now() + 86_400_000).toISOString(), idempotencyKey: 'bi-accrual-1' }], scheduledAt: new Date(Date.now() + 3_600_000).toISOString(), pointType: 'default' } },
  };
}

/** What the mutations must leave as it was: the partner's data made before them, read back. */
async function snapshot(t: TestApp, f: Fixtures) {
  const get = async (url: string) => {
    const response = await t.app.inject({ url, headers: f.partner.headers });
    return { status: response.statusCode, body: response.json<Record<string, unknown>>() };
  };
  const template = await get(`/v1/coupon-templates/${f.keptTemplate.id}`);
  return {
    template,
    otherTemplate: (await t.app.inject({ url: `/v1/coupon-templates/${f.otherTemplate.id}`, headers: f.other.headers })).json<unknown>(),
    coupon: await get(`/v1/coupons/${f.keptCoupon.couponId}`),
    balance: await get('/v1/users/bi-kept/points'),
    transactions: await get('/v1/users/bi-kept/points/transactions'),
    job: await get(`/v1/jobs/${f.keptJob.jobId}`),
  };
}

/** The valid request of an operation, then its mutations. */
function casesFor(pathTemplate: string, method: string, op: Operation, valid: Valid, f: Fixtures): Case[] {
  const parameters = op.parameters ?? [];
  const credentials = pathTemplate.startsWith('/health/') ? {} : op.responses['401'] && isAdmin(pathTemplate) ? adminHeaders : f.partner.headers;
  const build = (changes: { params?: Record<string, [string, boolean?]>; query?: string; headers?: Record<string, string | undefined>; body?: { type?: string; text?: string } | Json }): Sent => {
    let path = pathTemplate;
    for (const p of parameters.filter((p) => p.in === 'path')) {
      const [value, raw] = changes.params?.[p.name] ?? [valid.params![p.name]!];
      path = path.replace(`{${p.name}}`, raw ? value : encodeURIComponent(value));
    }
    const headers: Record<string, string> = { ...credentials, ...valid.headers };
    for (const [name, value] of Object.entries(changes.headers ?? {})) {
      if (value === undefined) delete headers[name];
      else headers[name] = value;
    }
    const query = changes.query ?? new URLSearchParams(valid.query ?? {}).toString();
    let body: string | undefined;
    const raw = changes.body as { type?: string; text?: string } | undefined;
    if (changes.body !== undefined && raw && typeof raw === 'object' && 'type' in raw && !Array.isArray(raw)) {
      if (raw.type) headers['content-type'] = raw.type;
      body = raw.text;
    } else {
      const json = changes.body !== undefined ? changes.body as Json : valid.body;
      if (json !== undefined) {
        headers['content-type'] = 'application/json';
        body = JSON.stringify(json);
      }
    }
    return { method, path, ...(query ? { query } : {}), headers, ...(body === undefined ? {} : { body }) };
  };
  const cases: Case[] = [];
  const add = (mutation: string, request: Sent) => cases.push({ operation: op.operationId, mutation, request });
  const freshKey = () => ('idempotency-key' in (valid.headers ?? {}) ? { 'idempotency-key': randomUUID() } : {});

  if (!valid.structuralOnly) {
    add('valid', build({}));
    add('no credentials', build({ headers: { 'x-api-key': undefined, authorization: undefined } }));
    add('wrong credentials', build({ headers: { 'x-api-key': 'sk_bogus', authorization: 'Bearer bogus' } }));
    for (const p of parameters.filter((p) => p.in === 'path')) {
      for (const [label, value, raw] of ODD_PARAMS) add(`path ${p.name}: ${label}`, build({ params: { [p.name]: [value, raw] }, headers: freshKey() }));
      add(`path ${p.name}: another partner's id`, build({ params: { [p.name]: [f.otherTemplate.id!] }, headers: freshKey() }));
    }
    for (const p of parameters.filter((p) => p.in === 'query')) {
      for (const [label, value] of [...ODD_PARAMS, ['100,000 chars', 'q'.repeat(100_000)] as [string, string]]) {
        add(`query ${p.name}: ${label}`, build({ query: new URLSearchParams({ ...valid.query, [p.name]: value }).toString() }));
      }
      add(`query ${p.name}: repeated`, build({ query: `${new URLSearchParams(valid.query ?? {}).toString()}&${p.name}=1&${p.name}=2` }));
    }
    add('query: unknown parameter', build({ query: `${new URLSearchParams(valid.query ?? {}).toString()}&zzUnknown=1` }));
    for (const p of parameters.filter((p) => p.in === 'header')) {
      add(`header ${p.name}: missing`, build({ headers: { [p.name]: undefined } }));
      for (const [label, value] of [['empty', ''], ['space inside', 'a b'], ['256 chars', 'k'.repeat(256)], ['10,000 chars', 'k'.repeat(10_000)], ['latin1', 'clé']]) {
        add(`header ${p.name}: ${label}`, build({ headers: { [p.name]: value } }));
      }
    }
    if (valid.body !== undefined) {
      for (const [path] of leaves(valid.body)) {
        const label = path.join('.');
        if (!isRoot(path)) add(`body ${label}: missing`, build({ body: without(valid.body, path), headers: freshKey() }));
        for (const [name, odd] of ODD_JSON) add(`body ${label}: ${name}`, build({ body: replaced(valid.body, path, odd), headers: freshKey() }));
      }
      for (const [path, value] of objects(valid.body)) {
        add(`body ${path.join('.') || '(root)'}: unknown field`, build({ body: replaced(valid.body, path, { ...(value as object), zzUnknown: 1 }), headers: freshKey() }));
      }
    }
  }
  if (BODY_METHODS.has(method)) {
    for (const [label, type, text] of ODD_BODIES) add(`body: ${label}`, build({ body: { type, text }, headers: freshKey() }));
  }
  return cases;
}

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const isAdmin = (path: string) => path.startsWith('/v1/partners') || path.startsWith('/v1/api-keys') || path.startsWith('/v1/admin/');
const isRoot = (path: string[]) => path.length === 0;

/** Paths of every scalar and container below the root, depth first (array: its first element only). */
function leaves(value: Json, path: string[] = []): Array<[string[], Json]> {
  const here: Array<[string[], Json]> = path.length > 0 ? [[path, value]] : [];
  if (Array.isArray(value)) return value.length > 0 ? [...here, ...leaves(value[0]!, [...path, '0'])] : here;
  if (value && typeof value === 'object') return [...here, ...Object.entries(value).flatMap(([k, v]) => leaves(v, [...path, k]))];
  return here;
}
function objects(value: Json, path: string[] = []): Array<[string[], Json]> {
  if (Array.isArray(value)) return value.length > 0 ? objects(value[0]!, [...path, '0']) : [];
  if (value && typeof value === 'object') return [[path, value], ...Object.entries(value).flatMap(([k, v]) => objects(v, [...path, k]))];
  return [];
}
function replaced(value: Json, path: string[], replacement: Json | undefined): Json {
  if (path.length === 0) return replacement as Json;
  const [head, ...rest] = path as [string, ...string[]];
  const copy: Json = Array.isArray(value) ? [...value] : { ...(value as Record<string, Json>) };
  const next = replaced((copy as Record<string, Json>)[head]!, rest, replacement);
  if (next === undefined) {
    if (Array.isArray(copy)) copy.splice(Number(head), 1);
    else delete (copy as Record<string, Json>)[head];
  } else {
    (copy as Record<string, Json>)[head] = next;
  }
  return copy;
}
const without = (value: Json, path: string[]) => replaced(value, path, undefined);

async function runAll<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) await work(items[next++]!);
  }));
}
