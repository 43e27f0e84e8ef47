// A webhook whose receiver keeps refusing: each failed attempt is retried with exponential backoff
// (graphile-worker's e^attempt seconds) and the delivery ends FAILED after 8 attempts, each of which
// reached the receiver. The test checks the backoff the queue scheduled after each failure, then
// pulls the retry forward (its run_at) instead of waiting ~30 minutes.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appWithJobQueue } from '../../test/harness/job-app.ts';
import { createPartner } from '../../test/harness/test-app.ts';
import { waitFor } from '../../test/harness/wait-for.ts';

describe('webhook retries', () => {
  let receiver: http.Server;
  let base: string;
  const hits = new Map<string, number>();

  beforeAll(async () => {
    receiver = http.createServer((request, response) => {
      request.resume();
      request.on('end', () => {
        hits.set(request.url ?? '', (hits.get(request.url ?? '') ?? 0) + 1);
        response.writeHead(503).end('not now');
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  });
  afterAll(() => { receiver?.close(); });
  const t = appWithJobQueue({ env: { STAMPEDE_WEBHOOK_ALLOW_PRIVATE: 'true' } });

  it('a receiver that always refuses: 8 attempts with growing backoff, then FAILED', async () => {
    const partner = await createPartner(t.app);
    const path = `/refuse-${partner.id}`;
    const registered = await t.app.inject({
      method: 'POST', url: '/v1/webhooks', headers: partner.headers, payload: { url: `${base}${path}`, kind: 'json', events: ['job.cancelled'] },
    });
    expect(registered.statusCode).toBe(201);
    // A job scheduled for later, cancelled at once: one announcement, job.cancelled.
    const accepted = await t.app.inject({
      method: 'POST', url: '/v1/points/accruals', headers: partner.headers,
      payload: { scheduledAt: new Date(Date.now() + 3_600_000).toISOString(), items: [{ userId: 'u1', amount: 1, idempotencyKey: 'k1' }] },
    });
    const { jobId } = accepted.json<{ jobId: string }>();
    expect((await t.app.inject({ method: 'POST', url: `/v1/jobs/${jobId}/cancel`, headers: partner.headers })).statusCode).toBe(200);

    const { rows: [delivery] } = await t.ctx.db.query<{ id: string }>('SELECT id FROM webhook_deliveries WHERE job_id = $1', [jobId]);
    const backoffAfter = new Map<number, number>(); // failed attempts so far → seconds until the next one
    await waitFor(async () => {
      const { rows: [state] } = await t.ctx.db.query<{ status: string }>('SELECT status FROM webhook_deliveries WHERE id = $1', [delivery!.id]);
      if (state!.status !== 'PENDING') return true;
      // The queue's entry, waiting for its next attempt (not running): note its backoff, then run it now.
      const { rows: [queued] } = await t.ctx.db.query<{ id: string; attempts: number; wait: number }>(
        `SELECT id, attempts, extract(epoch FROM run_at - now())::float8 AS wait FROM graphile_worker._private_jobs
          WHERE payload->>'deliveryId' = $1 AND locked_at IS NULL AND attempts > 0 AND run_at > now()`, [delivery!.id]);
      if (queued) {
        if (!backoffAfter.has(queued.attempts)) backoffAfter.set(queued.attempts, queued.wait);
        await t.ctx.db.query('UPDATE graphile_worker._private_jobs SET run_at = now() WHERE id = $1 AND locked_at IS NULL', [queued.id]);
      }
      return false;
    }, { timeoutMs: 120_000, what: 'the delivery to stop being PENDING', intervalMs: 50 });

    const deliveries = await t.app.inject({ url: `/v1/jobs/${jobId}/webhook-deliveries`, headers: partner.headers });
    expect(deliveries.json().items).toEqual([expect.objectContaining({ event: 'job.cancelled', status: 'FAILED', attempts: 8 })]);
    expect(hits.get(path)).toBe(8);
    // Backoff after each of the first 7 failures (the 8th is final), growing: e^n s as scheduled,
    // less the time this loop took to see it.
    expect([...backoffAfter.keys()].sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    for (let n = 1; n <= 7; n++) {
      expect(backoffAfter.get(n)!).toBeLessThanOrEqual(Math.exp(n) + 1);
      if (n > 1) expect(backoffAfter.get(n)!).toBeGreaterThan(backoffAfter.get(n - 1)!);
    }
    expect(backoffAfter.get(7)!).toBeGreaterThan(60);
    // Nothing left in the queue for it.
    const { rows: left } = await t.ctx.db.query(`SELECT 1 FROM graphile_worker._private_jobs WHERE payload->>'deliveryId' = $1`, [delivery!.id]);
    expect(left).toEqual([]);
  }, 150_000);
});
