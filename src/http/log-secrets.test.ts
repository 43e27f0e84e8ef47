// Secrets stay out of logs: a run that creates API keys, uses and revokes them, registers webhooks
// whose URLs carry secrets (a Slack-style path, a token in the query, user info) and has their
// deliveries fail, with every log line captured at trace level and request logging on. The
// captured pino output must contain none of the secrets it created.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { inject } from 'vitest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../app.ts';
import { loadConfig } from '../config.ts';
import type { AppContext } from '../context.ts';
import { createContext } from '../runtime.ts';
import { createPool } from '../infra/db.ts';
import { createLogger } from '../infra/logger.ts';
import { createMetrics } from '../infra/metrics.ts';
import { connectRedis } from '../infra/redis.ts';
import { startJobQueue } from '../job-queue.ts';
import { ADMIN_TOKEN, adminHeaders, templateBody } from '../../test/harness/test-app.ts';
import { waitFor } from '../../test/harness/wait-for.ts';
import type { FastifyInstance } from 'fastify';

describe('secrets in logs', () => {
  const lines: string[] = [];
  let ctx: AppContext;
  let app: FastifyInstance;
  let stopQueue: () => Promise<void>;
  let receiver: http.Server;
  let base: string;

  beforeAll(async () => {
    receiver = http.createServer((request, response) => { request.resume(); request.on('end', () => response.writeHead(500).end()); });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    base = `127.0.0.1:${(receiver.address() as AddressInfo).port}`;
    const config = loadConfig({
      DATABASE_URL: inject('databaseUrl'), REDIS_URL: inject('redisUrl'), STAMPEDE_ADMIN_TOKEN: ADMIN_TOKEN,
      LOG_LEVEL: 'trace', STAMPEDE_WEBHOOK_ALLOW_PRIVATE: 'true',
    });
    const logger = createLogger('trace', { write: (line: string) => { lines.push(line); } });
    const db = createPool(config.databaseUrl!, 5, logger);
    const ledgerDb = createPool(config.databaseUrl!, 5, logger, { pipelined: true, indexPlans: true });
    const redis = await connectRedis(config.redisUrl!, logger);
    ctx = createContext({ config, logger, db, ledgerDb, authDb: db, workerDb: db, redis, metrics: createMetrics() });
    app = await buildApp(ctx, { adminToken: ADMIN_TOKEN, logRequests: true });
    await app.ready();
    stopQueue = await startJobQueue(ctx);
  });
  afterAll(async () => {
    await stopQueue();
    await app.close();
    await ctx.redis?.close();
    await ctx.db.end();
    await ctx.ledgerDb.end();
    receiver.close();
  });

  it('logs none of the API keys, admin token, webhook URL secrets and webhook signing secrets of a run', async () => {
    const secrets: string[] = [ADMIN_TOKEN];
    const partner = (await app.inject({ method: 'POST', url: '/v1/partners', headers: adminHeaders, payload: { name: 'log-secrets' } })).json();
    secrets.push(partner.apiKey);
    const headers = { 'x-api-key': partner.apiKey as string };
    const extra = (await app.inject({ method: 'POST', url: `/v1/partners/${partner.id}/api-keys`, headers: adminHeaders })).json();
    secrets.push(extra.apiKey);
    expect((await app.inject({ url: '/v1/coupon-templates', headers: { 'x-api-key': extra.apiKey } })).statusCode).toBe(200);
    expect((await app.inject({ method: 'DELETE', url: `/v1/api-keys/${extra.id}`, headers: adminHeaders })).statusCode).toBe(204);
    expect((await app.inject({ url: '/v1/coupon-templates', headers: { 'x-api-key': extra.apiKey } })).statusCode).toBe(401);

    const hooks = [
      { url: `http://${base}/services/T0SLACKSECRET/B0SLACKSECRET/xoxbSlackPathSecret1234`, kind: 'slack', pathSecret: 'xoxbSlackPathSecret1234' },
      { url: `http://${base}/api/webhooks/1234567890/discordTokenSecret5678?wait=true`, kind: 'discord', pathSecret: 'discordTokenSecret5678' },
      { url: `http://${base}/hook?token=queryTokenSecret9012`, kind: 'json', pathSecret: 'queryTokenSecret9012' },
    ];
    // User info in a webhook URL is refused (fetch could not send it, and would quote it in its error).
    const withUserInfo = await app.inject({ method: 'POST', url: '/v1/webhooks', headers, payload: { url: `http://hookuser:userInfoSecret3456@${base}/in`, kind: 'json', events: ['job.started'] } });
    expect(withUserInfo.json().error.code).toBe('WEBHOOK_URL_NOT_ALLOWED');
    secrets.push('userInfoSecret3456');
    for (const hook of hooks) {
      const created = await app.inject({ method: 'POST', url: '/v1/webhooks', headers, payload: { url: hook.url, kind: hook.kind, events: ['job.started', 'job.succeeded'] } });
      expect(created.statusCode).toBe(201);
      secrets.push(hook.pathSecret, created.json().secret);
    }
    const template = (await app.inject({ method: 'POST', url: '/v1/coupon-templates', headers, payload: templateBody({ totalQuantity: null }) })).json();
    const { jobId } = (await app.inject({ method: 'POST', url: `/v1/coupon-templates/${template.id}/distributions`, headers, payload: { userIds: ['ann', 'bob'] } })).json();

    // Every delivery has failed once (the receiver answers 500), so each failure has been logged.
    await waitFor(async () => {
      const deliveries = (await app.inject({ url: `/v1/jobs/${jobId}/webhook-deliveries`, headers })).json().items as Array<{ attempts: number }>;
      return deliveries.length === 2 * hooks.length && deliveries.every((delivery) => delivery.attempts >= 1)
        && lines.filter((line) => line.includes('webhook delivery failed')).length >= 2 * hooks.length;
    }, { what: 'every delivery attempted and its failure logged' });

    const log = lines.join('');
    expect(log).toContain(`"receiver":"http://${base}"`);
    const leaked = secrets.filter((secret) => log.includes(secret));
    console.log(`log-secrets: ${lines.length} log lines, ${secrets.length} secrets created, ${leaked.length} found in the logs`);
    expect(leaked).toEqual([]);
  }, 60_000);
});
