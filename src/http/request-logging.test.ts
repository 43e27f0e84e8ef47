// Structured logs carry the request id: every line a request logs, and one line for every 5xx,
// whether or not request logging is on.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../app.ts';
import { createContext } from '../runtime.ts';
import { createPool } from '../infra/db.ts';
import { freePort } from '../infra/free-port.ts';
import { createMetrics } from '../infra/metrics.ts';
import { generateApiKey } from '../partners/api-key.ts';
import { ADMIN_TOKEN, testConfig } from '../../test/harness/test-app.ts';

type LogLine = Record<string, unknown> & { msg: string; level: number };

async function appWithCapturedLogs(options: { databaseUrl?: string; logRequests: boolean }) {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  const logger = pino({ level: 'info' }, sink);
  const config = testConfig();
  const db = createPool(options.databaseUrl ?? config.databaseUrl!, 2, logger);
  const ctx = createContext({ config, logger, db, ledgerDb: db, authDb: db, workerDb: db, redis: undefined, metrics: createMetrics() });
  const app = await buildApp(ctx, { adminToken: ADMIN_TOKEN, logRequests: options.logRequests });
  await app.ready();
  return { app, lines, close: async () => { await app.close(); await db.end(); } };
}

describe('request logs', () => {
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => { for (const close of closers.splice(0)) await close(); });

  it('logs a 5xx with the request id even when request logging is off', async () => {
    // A database nobody listens on: the API key lookup fails and the API answers 503.
    const deadDatabase = `postgres://nobody:secret@127.0.0.1:${await freePort()}/none`;
    const t = await appWithCapturedLogs({ databaseUrl: deadDatabase, logRequests: false });
    closers.push(t.close);
    const response = await t.app.inject({ url: '/v1/coupon-templates', headers: { 'x-api-key': generateApiKey().apiKey, 'x-request-id': 'req-5xx-1' } });
    expect(response.statusCode).toBe(503);
    expect(response.headers['x-request-id']).toBe('req-5xx-1');
    const failed = t.lines.find((line) => line.msg === 'request failed');
    expect(failed).toMatchObject({ reqId: 'req-5xx-1', statusCode: 503, method: 'GET', url: '/v1/coupon-templates', level: 50 });
    expect(t.lines.filter((line) => line.level >= 50).every((line) => line.reqId === 'req-5xx-1')).toBe(true);
  });

  it('puts the generated request id on every line of a logged request', async () => {
    const t = await appWithCapturedLogs({ logRequests: true });
    closers.push(t.close);
    const response = await t.app.inject({ url: '/health/live' });
    const requestId = response.headers['x-request-id'];
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    const requestLines = t.lines.filter((line) => 'req' in line || 'res' in line);
    expect(requestLines.map((line) => line.msg)).toEqual(['incoming request', 'request completed']);
    expect(requestLines.every((line) => line.reqId === requestId)).toBe(true);
    expect(t.lines.some((line) => line.msg === 'request failed')).toBe(false);
  });
});
