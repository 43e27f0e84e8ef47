// Balances stay exact end to end: a wallet never holds more than 2^53 − 1 points (MAX_BALANCE), so
// the INT8 read back as a JavaScript number is never rounded. Past it, an earn or a transfer is
// refused (409 BALANCE_LIMIT_REACHED) and a bulk accrual item is an item failure while the rest of
// its job is applied, as is an item whose staged expiry cannot be read. A job that fails records a
// catalogued reason, not the database's text.
import { describe, expect, it } from 'vitest';
import { acceptJob } from '../jobs/accept-job.ts';
import { appWithJobQueue, finishedJob } from '../../test/harness/job-app.ts';
import { createPartner } from '../../test/harness/test-app.ts';
import { stageAccrualItems } from './accrual.ts';
import { checkPointsInvariants } from './invariants.ts';
import { MAX_BALANCE } from './ledger-rules.ts';

type Headers = Record<string, string>;
const t = appWithJobQueue();

let keySeq = 0;
const post = (headers: Headers, url: string, payload: Record<string, unknown>) =>
  t.app.inject({ method: 'POST', url, headers: { ...headers, 'idempotency-key': `limit-${Date.now()}-${keySeq++}` }, payload });

describe('balance limit', () => {
  it('applies an accrual up to 2^53 − 1 exactly; the item past it fails alone; earns and transfers past it are refused', async () => {
    const partner = await createPartner(t.app);
    const top = 1_000_000_000_000;
    // 9,007 × 10^12 fits under 2^53 − 1 (9,007,199,254,740,991); the 9,008th item does not.
    const items = [
      ...Array.from({ length: 9_008 }, (_, i) => ({ userId: 'whale', amount: top, idempotencyKey: `whale-${i}` })),
      { userId: 'minnow', amount: 5, idempotencyKey: 'minnow-0' },
    ];
    const accepted = await t.app.inject({ method: 'POST', url: '/v1/points/accruals', headers: partner.headers, payload: { items } });
    expect(accepted.statusCode, accepted.body).toBe(202);
    const job = await finishedJob(t.app, partner.headers, accepted.json().jobId);
    expect(job).toMatchObject({ status: 'SUCCEEDED', total: 9_009, processed: 9_009, succeeded: 9_008, failed: 1, error: null });
    const failures = (await t.app.inject({ url: `/v1/jobs/${job.id}/failures`, headers: partner.headers })).json();
    expect(failures.items).toEqual([{ position: 9_007, item: 'whale-9007', reason: 'BALANCE_LIMIT_REACHED' }]);

    const balance = async (userId: string) => (await t.app.inject({ url: `/v1/users/${userId}/points`, headers: partner.headers })).json().balance;
    expect(await balance('whale')).toBe(9_007 * top);
    expect(await balance('minnow')).toBe(5);

    // Up to the limit exactly, then one point more is refused.
    const rest = MAX_BALANCE - 9_007 * top;
    const last = await post(partner.headers, '/v1/points/earn', { userId: 'whale', amount: rest });
    expect(last.statusCode, last.body).toBe(201);
    expect(last.json().balance).toBe(MAX_BALANCE);
    expect(JSON.parse(last.body.replace(/"balance":(\d+)/, '"balance":"$1"')).balance).toBe('9007199254740991');
    const over = await post(partner.headers, '/v1/points/earn', { userId: 'whale', amount: 1 });
    expect(over.statusCode, over.body).toBe(409);
    expect(over.json().error.code).toBe('BALANCE_LIMIT_REACHED');
    const transfer = await post(partner.headers, '/v1/points/transfer', { fromUserId: 'minnow', toUserId: 'whale', amount: 1 });
    expect(transfer.statusCode, transfer.body).toBe(409);
    expect(transfer.json().error.code).toBe('BALANCE_LIMIT_REACHED');
    expect(await balance('whale')).toBe(MAX_BALANCE);
    expect(await balance('minnow')).toBe(5);
    const { rows } = await t.ctx.db.query<{ balance: string }>(
      `SELECT balance::text FROM point_wallets WHERE partner_id = $1 AND user_id = 'whale'`, [partner.id]);
    expect(rows[0]!.balance).toBe('9007199254740991');
    expect((await checkPointsInvariants(t.ctx.db, { partnerId: partner.id })).violations).toEqual([]);
  });
});

describe('invalid items of a staged job', () => {
  /** Accepts an accrual job whose staged chunks are then rewritten by `corrupt` (as an older version might have staged them). */
  async function stagedJob(partnerId: string, items: Array<{ userId: string; amount: number; expiresAt?: string; idempotencyKey: string }>, corrupt: string[]) {
    const jobId = crypto.randomUUID();
    await acceptJob(t.ctx, { id: jobId, partnerId, type: 'POINT_ACCRUAL', staged: true, params: { pointType: 'default' } }, async (tx) => {
      const chunkCount = await stageAccrualItems(tx, jobId, 'default', items);
      await tx.query('UPDATE job_chunks SET payload = replace(payload, $2, $3) WHERE job_id = $1', [jobId, ...corrupt]);
      return { chunkCount, total: items.length };
    });
    return jobId;
  }

  it('fails an item whose staged expiry PostgreSQL cannot read, and applies the rest', async () => {
    const partner = await createPartner(t.app);
    const expiresAt = new Date(Date.now() + 86_400_000).toISOString();
    // Main once accepted 9999-12-31T23:59:59-23:59 and staged it as year 10000, which PostgreSQL cannot read.
    const jobId = await stagedJob(partner.id, [
      { userId: 'a', amount: 1, idempotencyKey: 'ok-1' },
      { userId: 'b', amount: 2, expiresAt, idempotencyKey: 'bad-1' },
      { userId: 'c', amount: 3, expiresAt: new Date(Date.now() + 2 * 86_400_000).toISOString(), idempotencyKey: 'ok-2' },
    ], [`"${expiresAt}"`, '"+010000-01-01T23:58:59.000Z"']);
    const job = await finishedJob(t.app, partner.headers, jobId);
    expect(job).toMatchObject({ status: 'SUCCEEDED', processed: 3, succeeded: 2, failed: 1, error: null });
    const failures = (await t.app.inject({ url: `/v1/jobs/${jobId}/failures`, headers: partner.headers })).json();
    expect(failures.items).toEqual([{ position: 1, item: 'bad-1', reason: 'MALFORMED_EXPIRY' }]);
    const balance = async (userId: string) => (await t.app.inject({ url: `/v1/users/${userId}/points`, headers: partner.headers })).json().balance;
    expect([await balance('a'), await balance('b'), await balance('c')]).toEqual([1, 0, 3]);
    expect((await checkPointsInvariants(t.ctx.db, { partnerId: partner.id })).violations).toEqual([]);
  });

  it('records a catalogued reason, never the database error text, when a chunk cannot be applied at all', async () => {
    const partner = await createPartner(t.app);
    const jobId = await stagedJob(partner.id, [{ userId: 'u', amount: 1, idempotencyKey: 'k-1' }], ['[', '{not json']);
    const job = await finishedJob(t.app, partner.headers, jobId);
    expect(job.status).toBe('FAILED');
    expect(job.error).toBe('JOB_FAILED: The job failed on the server; the operator\'s logs have the details.');
  });
});
