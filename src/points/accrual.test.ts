import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { insertJob } from '../jobs/job-repository.ts';
import { appWithJobQueue, finishedJob } from '../../test/harness/job-app.ts';
import { createPartner, type TestApp } from '../../test/harness/test-app.ts';
import { waitFor } from '../../test/harness/wait-for.ts';
import { stageAccrualItems } from './accrual.ts';
import { earnFingerprint } from './idempotency.ts';
import { checkPointsInvariants } from './invariants.ts';

type Headers = Record<string, string>;

async function jobState(t: TestApp, headers: Headers, jobId: string) {
  return (await t.app.inject({ url: `/v1/jobs/${jobId}`, headers })).json();
}

describe('bulk point accrual', () => {
  const t = appWithJobQueue();

  it('applies the same 10,000 items posted twice (the second while the first runs) exactly once', async () => {
    const partner = await createPartner(t.app);
    // 2,000 users with 5 earns each; user i earns 10 + k points for its k-th item.
    const items = Array.from({ length: 10_000 }, (_, i) => ({
      userId: `member-${i % 2_000}`, amount: 10 + Math.floor(i / 2_000), idempotencyKey: `campaign-7:${i}`,
      ...(i % 2 === 0 ? { expiresAt: new Date(Date.now() + 90 * 86_400_000).toISOString() } : {}),
    }));
    // One item was already earned through the API with the same key and body, one under a reused key.
    const earn = (key: string, body: Record<string, unknown>) => t.app.inject({
      method: 'POST', url: '/v1/points/earn', headers: { ...partner.headers, 'idempotency-key': key }, payload: body,
    });
    const { idempotencyKey: sameKey, ...sameBody } = items[1]!;
    expect((await earn(sameKey, sameBody)).statusCode).toBe(201);
    expect((await earn(items[3]!.idempotencyKey, { userId: 'someone-else', amount: 5 })).statusCode).toBe(201);

    // member-1's wallet (created by the earn above) is held locked, so the first job stops in its
    // first chunk and is still running when the second request is accepted and starts.
    const holder = await t.ctx.db.connect();
    await holder.query('BEGIN');
    await holder.query(`SELECT 1 FROM point_wallets WHERE partner_id = $1 AND user_id = 'member-1' FOR UPDATE`, [partner.id]);
    const post = () => t.app.inject({ method: 'POST', url: '/v1/points/accruals', headers: partner.headers, payload: { items } });
    const running = (jobId: string) => waitFor(async () => (await jobState(t, partner.headers, jobId)).status !== 'QUEUED', { what: `job ${jobId} to start` });
    const first = await post();
    expect(first.statusCode, first.body).toBe(202);
    const firstId = first.json().jobId;
    await running(firstId);
    const second = await post();
    expect(second.statusCode).toBe(202);
    // At most one running job per partner (fair share, src/jobs/queue.ts): the second waits its turn.
    // A witness: another partner's job, queued after the second, runs to the end on the free worker
    // slot; the worker took it over the older second job, which therefore could not start.
    const witness = await createPartner(t.app);
    const witnessJob = await t.app.inject({ method: 'POST', url: '/v1/points/accruals', headers: witness.headers, payload: { items: [{ userId: 'w-1', amount: 1, idempotencyKey: 'witness-1' }] } });
    expect(witnessJob.statusCode, witnessJob.body).toBe(202);
    expect(await finishedJob(t.app, witness.headers, witnessJob.json().jobId, 40_000)).toMatchObject({ status: 'SUCCEEDED' });
    expect(await jobState(t, partner.headers, second.json().jobId)).toMatchObject({ status: 'QUEUED' });
    expect(await jobState(t, partner.headers, firstId)).toMatchObject({ status: 'RUNNING', processed: 0 });
    await holder.query('COMMIT');
    holder.release();
    const [a, b] = await Promise.all([finishedJob(t.app, partner.headers, firstId), finishedJob(t.app, partner.headers, second.json().jobId)]);

    expect(a.status).toBe('SUCCEEDED');
    expect(b.status).toBe('SUCCEEDED');
    expect(a.succeeded + b.succeeded).toBe(9_998);
    expect(a.failed).toBe(1);
    expect(b.failed).toBe(1);
    expect(a.skipped + b.skipped).toBe(20_000 - 9_998 - 2); // every other item of both requests
    const failures = (await t.app.inject({ url: `/v1/jobs/${firstId}/failures`, headers: partner.headers })).json();
    expect(failures.items).toEqual([{ position: 3, item: items[3]!.idempotencyKey, reason: 'IDEMPOTENCY_KEY_REUSED' }]);

    const { rows } = await t.ctx.db.query<{ user_id: string; balance: number }>(
      `SELECT user_id, balance FROM point_wallets WHERE partner_id = $1 AND user_id LIKE 'member-%'`, [partner.id]);
    expect(rows).toHaveLength(2_000);
    const expected = new Map<string, number>();
    items.forEach((item, i) => { if (i !== 3) expected.set(item.userId, (expected.get(item.userId) ?? 0) + item.amount); });
    for (const row of rows) expect(row.balance).toBe(expected.get(row.user_id));
    const report = await checkPointsInvariants(t.ctx.db, { partnerId: partner.id });
    expect(report.violations).toEqual([]);

    // The API replays what the bulk item recorded for its key: the EARN answer, its expiry the
    // item's own (items[10]) or the partner's default (items[9]), as the lot holds it.
    for (const index of [9, 10]) {
      const { idempotencyKey: key, ...body } = items[index]!;
      const replay = await earn(key, body);
      expect(replay.statusCode).toBe(201);
      expect(replay.headers['idempotent-replayed']).toBe('true');
      const { rows: [lot] } = await t.ctx.db.query<{ transaction_id: string; expires_at: Date }>(
        `SELECT l.source_transaction_id AS transaction_id, l.expires_at FROM point_idempotency r
           JOIN point_lots l ON l.source_transaction_id = r.transaction_id
          WHERE r.partner_id = $1 AND r.idempotency_key = $2`, [partner.id, key]);
      expect(replay.json()).toEqual({
        transactionId: lot!.transaction_id, type: 'EARN', amount: body.amount, balance: expect.any(Number), expiresAt: lot!.expires_at.toISOString(),
      });
      if (body.expiresAt !== undefined) expect(replay.json().expiresAt).toBe(body.expiresAt);
    }
  });

  it('runs a chunk again when a concurrent writer records one of its keys after the chunk read them', async () => {
    const partner = await createPartner(t.app);
    const items = Array.from({ length: 50 }, (_, i) => ({ userId: `racer-${i}`, amount: 7, idempotencyKey: `race:${i}` }));
    // Another writer holds an uncommitted record of key race:20 (a different request: another user).
    const other = await t.ctx.db.connect();
    try {
      await other.query('BEGIN');
      await other.query(
        `INSERT INTO point_idempotency (partner_id, idempotency_key, request_hash, status_code, response)
         VALUES ($1, 'race:20', sha256('someone else'), 201, '{}')`, [partner.id]);
      const accepted = await t.app.inject({ method: 'POST', url: '/v1/points/accruals', headers: partner.headers, payload: { items } });
      expect(accepted.statusCode).toBe(202);
      // The chunk's insert of race:20 now waits for that writer; once it commits, the insert fails.
      // (pg_stat_activity keeps the first 1,024 bytes of the statement's text.)
      await waitFor(async () => {
        const { rows: [waiting] } = await t.ctx.db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE wait_event_type = 'Lock' AND wait_event = 'transactionid' AND query LIKE '%accrual_chunk_items%'`);
        return waiting!.n > 0;
      }, { what: 'the chunk to wait for the other writer', intervalMs: 20 });
      await other.query('COMMIT');
      const job = await finishedJob(t.app, partner.headers, accepted.json().jobId);
      expect(job).toMatchObject({ status: 'SUCCEEDED', succeeded: 49, failed: 1, skipped: 0 });
    } finally {
      other.release();
    }
    const failures = (await t.app.inject({ url: `/v1/jobs/${(await t.ctx.db.query<{ id: string }>(
      'SELECT id FROM jobs WHERE partner_id = $1', [partner.id])).rows[0]!.id}/failures`, headers: partner.headers })).json();
    expect(failures.items).toEqual([{ position: 20, item: 'race:20', reason: 'IDEMPOTENCY_KEY_REUSED' }]);
    const { rows: [ledger] } = await t.ctx.db.query<{ earns: number; balance: string }>(
      `SELECT (SELECT count(*) FROM point_transactions WHERE partner_id = $1)::int AS earns,
              (SELECT sum(balance) FROM point_wallets WHERE partner_id = $1) AS balance`, [partner.id]);
    expect(ledger).toEqual({ earns: 49, balance: String(49 * 7) });
    expect((await checkPointsInvariants(t.ctx.db, { partnerId: partner.id })).violations).toEqual([]);
  });

  it('expires the due lots of the wallets it earns into, as every earn does', async () => {
    const partner = await createPartner(t.app);
    // member-0 holds 30 points in a lot that expired an hour ago, not swept yet; member-1 none.
    const { rows: [wallet] } = await t.ctx.db.query<{ id: number }>(
      `INSERT INTO point_wallets (partner_id, user_id, balance) VALUES ($1, 'due-0', 30) RETURNING id`, [partner.id]);
    await t.ctx.db.query(
      `WITH e AS (INSERT INTO point_transactions (id, partner_id, wallet_id, type, amount) VALUES (gen_random_uuid(), $1, $2, 'EARN', 30) RETURNING id)
       INSERT INTO point_lots (wallet_id, source_transaction_id, amount, remaining, expires_at) SELECT $2, id, 30, 30, now() - interval '1 hour' FROM e`,
      [partner.id, wallet!.id]);
    const items = [0, 1].map((i) => ({ userId: `due-${i}`, amount: 5, idempotencyKey: `due:${i}` }));
    const accepted = await t.app.inject({ method: 'POST', url: '/v1/points/accruals', headers: partner.headers, payload: { items } });
    expect(accepted.statusCode).toBe(202);
    expect(await finishedJob(t.app, partner.headers, accepted.json().jobId)).toMatchObject({ status: 'SUCCEEDED', succeeded: 2 });
    const { rows } = await t.ctx.db.query<{ user_id: string; balance: number; expired: number }>(
      `SELECT w.user_id, w.balance, coalesce((SELECT sum(-amount) FROM point_transactions t WHERE t.wallet_id = w.id AND t.type = 'EXPIRE'), 0)::int AS expired
         FROM point_wallets w WHERE w.partner_id = $1 ORDER BY w.user_id`, [partner.id]);
    expect(rows).toEqual([{ user_id: 'due-0', balance: 5, expired: 30 }, { user_id: 'due-1', balance: 5, expired: 0 }]);
    expect((await checkPointsInvariants(t.ctx.db, { partnerId: partner.id })).violations).toEqual([]);

    // Both wallets exist now (the chunk locks them without creating any); due-1's lot falls due.
    await t.ctx.db.query(
      `UPDATE point_lots SET expires_at = now() - interval '1 minute'
        WHERE wallet_id = (SELECT id FROM point_wallets WHERE partner_id = $1 AND user_id = 'due-1')`, [partner.id]);
    const again = await t.app.inject({
      method: 'POST', url: '/v1/points/accruals', headers: partner.headers,
      payload: { items: [0, 1].map((i) => ({ userId: `due-${i}`, amount: 5, idempotencyKey: `due-again:${i}` })) },
    });
    expect(await finishedJob(t.app, partner.headers, again.json().jobId)).toMatchObject({ status: 'SUCCEEDED', succeeded: 2 });
    const { rows: after } = await t.ctx.db.query<{ user_id: string; balance: number; expired: number }>(
      `SELECT w.user_id, w.balance, coalesce((SELECT sum(-amount) FROM point_transactions t WHERE t.wallet_id = w.id AND t.type = 'EXPIRE'), 0)::int AS expired
         FROM point_wallets w WHERE w.partner_id = $1 ORDER BY w.user_id`, [partner.id]);
    expect(after).toEqual([{ user_id: 'due-0', balance: 10, expired: 30 }, { user_id: 'due-1', balance: 5, expired: 5 }]);
    expect((await checkPointsInvariants(t.ctx.db, { partnerId: partner.id })).violations).toEqual([]);
  });

  it('stages concurrent requests one at a time and accepts them all', async () => {
    const partner = await createPartner(t.app);
    const posts = Array.from({ length: 4 }, (_, r) => t.app.inject({
      method: 'POST', url: '/v1/points/accruals', headers: partner.headers,
      payload: { items: Array.from({ length: 250 }, (_, i) => ({ userId: `gate-${i}`, amount: 1, idempotencyKey: `gate:${r}:${i}` })) },
    }));
    const answers = await Promise.all(posts);
    expect(answers.map((answer) => answer.statusCode)).toEqual([202, 202, 202, 202]);
    const jobs = await Promise.all(answers.map((answer) => finishedJob(t.app, partner.headers, answer.json().jobId)));
    expect(jobs.map((job) => [job.status, job.succeeded])).toEqual(Array(4).fill(['SUCCEEDED', 250]));
    // A refused request leaves the gate too: the next one is still served.
    const bad = await t.app.inject({ method: 'POST', url: '/v1/points/accruals', headers: partner.headers, payload: { items: [{ userId: 'x', amount: -1, idempotencyKey: 'k' }] } });
    expect(bad.statusCode).toBe(400);
    const after = await t.app.inject({ method: 'POST', url: '/v1/points/accruals', headers: partner.headers, payload: { items: [{ userId: 'x', amount: 1, idempotencyKey: 'gate:after' }] } });
    expect(after.statusCode).toBe(202);
  });

  it('stages each chunk as one JSON array sent in pieces, keys with quotes and backslashes intact', async () => {
    const partner = await createPartner(t.app);
    const expiresAt = '2031-01-02T03:04:05.678Z';
    const items = Array.from({ length: 2_345 }, (_, i) => ({
      userId: `stage-${i}`, amount: 1 + i, idempotencyKey: `k\\"${i}\\`, ...(i % 3 === 0 ? { expiresAt } : {}),
    }));
    const client = await t.ctx.db.connect();
    try {
      await client.query('BEGIN');
      const jobId = randomUUID();
      await insertJob(client, { id: jobId, partnerId: partner.id, type: 'POINT_ACCRUAL', params: { pointType: 'default' }, staged: true });
      expect(await stageAccrualItems(client, jobId, 'default', items)).toBe(2);
      const { rows } = await client.query<{ chunk_no: number; first_position: number; item_count: number; payload: string }>(
        'SELECT chunk_no, first_position, item_count, payload FROM job_chunks WHERE job_id = $1 ORDER BY chunk_no', [jobId]);
      expect(rows.map((row) => [row.chunk_no, row.first_position, row.item_count])).toEqual([[0, 0, 2_000], [1, 2_000, 345]]);
      const staged = rows.flatMap((row) => JSON.parse(row.payload) as Array<Record<string, unknown>>);
      expect(staged.map((item) => [item.p, item.u, item.a, item.e, item.k])).toEqual(
        items.map((item, i) => [i, item.userId, item.amount, item.expiresAt ?? null, item.idempotencyKey]));
      expect(staged[7]!.h).toBe(earnFingerprint({ userId: 'stage-7', amount: 8, pointType: 'default' }).toString('hex'));
      expect(new Set(staged.map((item) => item.t)).size).toBe(items.length);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });

  it('delays a scheduled accrual until scheduledAt', async () => {
    const partner = await createPartner(t.app);
    const scheduledAt = new Date(Date.now() + 2_000).toISOString();
    const accepted = await t.app.inject({
      method: 'POST', url: '/v1/points/accruals', headers: partner.headers,
      payload: { scheduledAt, pointType: 'staff', items: [{ userId: 'u1', amount: 100, idempotencyKey: 'k1' }] },
    });
    expect(accepted.statusCode).toBe(202);
    const queued = await jobState(t, partner.headers, accepted.json().jobId);
    expect(queued).toMatchObject({ scheduledAt, total: 1 });
    // Read before scheduledAt, it must still be waiting. On a machine loaded enough for the answers to
    // take past it the job may rightly have started; when it started is checked below in every case.
    if (Date.now() < Date.parse(scheduledAt)) expect(queued.status).toBe('QUEUED');
    const done = await finishedJob(t.app, partner.headers, accepted.json().jobId);
    expect(done.status).toBe('SUCCEEDED');
    expect(Date.parse(done.startedAt)).toBeGreaterThanOrEqual(Date.parse(scheduledAt));
    const balance = (await t.app.inject({ url: '/v1/users/u1/points?pointType=staff', headers: partner.headers })).json();
    expect(balance.balance).toBe(100);
  });

  it('refuses a request atomically: 413 above 10,000 items, 400 with the index of a bad item', async () => {
    const partner = await createPartner(t.app);
    const post = (payload: Record<string, unknown>) => t.app.inject({ method: 'POST', url: '/v1/points/accruals', headers: partner.headers, payload });
    const item = (i: number) => ({ userId: `u${i}`, amount: 1, idempotencyKey: `k${i}` });
    const tooMany = await post({ items: Array.from({ length: 10_001 }, (_, i) => item(i)) });
    expect(tooMany.statusCode).toBe(413);
    expect(tooMany.json().error.code).toBe('TOO_MANY_ITEMS');
    const badAmount = await post({ items: [item(0), item(1), item(2), { ...item(3), amount: -5 }] });
    expect(badAmount.statusCode).toBe(400);
    expect(badAmount.json().error.details[0]).toMatchObject({ index: 3, field: 'body.items.3.amount' });
    const duplicate = await post({ items: [item(0), item(1), item(0)] });
    expect(duplicate.json().error.details[0]).toMatchObject({ index: 2, field: 'body.items.2.idempotencyKey' });
    const past = await post({ items: [item(0), { ...item(1), expiresAt: '2001-01-01T00:00:00Z' }] });
    expect(past.json().error.details[0]).toMatchObject({ index: 1 });
    const { rows: [jobs] } = await t.ctx.db.query('SELECT count(*)::int AS n FROM jobs WHERE partner_id = $1', [partner.id]);
    expect(jobs!.n).toBe(0);
  });
});
