// Bulk distribution refuses a template whose claim event is live (src/coupons/gate-lock.ts), in
// both modes, and accepts it before the gate served it and an hour after the window closed; a job
// accepted before the event went live fails at its next chunk instead of writing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { holdOffGateOpening } from './gate-lock.ts';
import { startJobQueue } from '../job-queue.ts';
import { claimOnce } from '../../test/harness/claims.ts';
import { createTemplate } from '../../test/harness/issue-coupons.ts';
import { createPartner, createTestApp, type TestApp } from '../../test/harness/test-app.ts';
import { waitFor } from '../../test/harness/wait-for.ts';

describe.each([
  { mode: 'embedded', distributed: false },
  { mode: 'distributed', distributed: true },
])('distribution into a live claim event ($mode)', ({ distributed }) => {
  let t: TestApp;
  beforeAll(async () => { t = await createTestApp({ distributed }); });
  afterAll(async () => { await t.close(); });

  it('is refused with CLAIM_EVENT_LIVE once the gate served the event, and accepted before and after', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: 100 });
    const distribute = () => t.app.inject({
      method: 'POST', url: `/v1/coupon-templates/${templateId}/distributions`, headers: partner.headers, payload: { userIds: ['bulk-1'] },
    });
    expect((await distribute()).statusCode).toBe(202); // the gate has not served it yet

    expect((await claimOnce(t.app, partner.headers, templateId, 'clicker')).status).toBe(201);
    const refused = await distribute();
    expect(refused.statusCode).toBe(409);
    expect(refused.json().error.code).toBe('CLAIM_EVENT_LIVE');

    await t.ctx.db.query(
      `UPDATE coupon_templates SET claim_starts_at = now() - interval '3 hours', claim_ends_at = now() - interval '50 minutes' WHERE id = $1`,
      [templateId],
    );
    expect((await distribute()).statusCode).toBe(409); // closed, but still settling (reconciled)
    await t.ctx.db.query(
      `UPDATE coupon_templates SET claim_ends_at = now() - interval '61 minutes' WHERE id = $1`,
      [templateId],
    );
    expect((await distribute()).statusCode).toBe(202); // the window closed more than an hour ago
  });

  it('fails a job accepted before the event went live, at its first chunk, without writing into the event', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: 100 });
    const accepted = await t.app.inject({
      method: 'POST', url: `/v1/coupon-templates/${templateId}/distributions`, headers: partner.headers,
      payload: { userIds: ['bulk-1', 'bulk-2', 'clicker'] },
    });
    expect(accepted.statusCode).toBe(202);
    const { jobId } = accepted.json<{ jobId: string }>();

    expect((await claimOnce(t.app, partner.headers, templateId, 'clicker')).status).toBe(201); // the event goes live
    const stopQueue = await startJobQueue(t.ctx);
    try {
      const job = await waitFor(async () => {
        const now = (await t.app.inject({ url: `/v1/jobs/${jobId}`, headers: partner.headers })).json();
        if (['SUCCEEDED', 'CANCELLED'].includes(now.status)) throw new Error(`job ${JSON.stringify(now)}`);
        return now.status === 'FAILED' && now;
      }, { what: 'the distribution to fail', intervalMs: 100 });
      expect(job).toMatchObject({ total: 3, processed: 0, succeeded: 0 });
      expect(job.error).toMatch(/^CLAIM_EVENT_LIVE: /);
    } finally {
      await stopQueue();
    }
    const { rows } = await t.ctx.db.query('SELECT user_id FROM coupons WHERE template_id = $1 AND slot IS NULL', [templateId]);
    expect(rows).toEqual([]); // nothing distributed; the claimed coupon (with its slot) is the gate's
  });

  it('opens an event only once a distribution chunk writing into it has committed, and counts its coupons', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: 100 });
    const chunk = await t.ctx.db.connect(); // stands for a distribution chunk of the template, mid-write
    await chunk.query('BEGIN');
    await holdOffGateOpening(chunk, templateId);
    await chunk.query(
      `INSERT INTO coupons (id, partner_id, template_id, user_id, seq, valid_from, valid_until)
       VALUES (gen_random_uuid(), $1, $2, 'early-bird', 1, now(), now() + interval '1 day')`, [partner.id, templateId]);

    let answered = false;
    const claim = claimOnce(t.app, partner.headers, templateId, 'early-bird').finally(() => { answered = true; });
    // Either the claim answers (wrong) or a session of this file's database waits on the chunk's lock.
    await waitFor(async () => answered || (await t.ctx.db.query(
      `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`)).rowCount! > 0,
    { what: 'the claim to answer or to wait on the chunk' });
    expect(answered).toBe(false); // the gate waits for the chunk
    // like a chunk, it raises issued_count last (the template row is not locked before)
    await chunk.query('UPDATE coupon_templates SET issued_count = issued_count + 1 WHERE id = $1', [templateId]);
    await chunk.query('COMMIT');
    chunk.release();
    expect(await claim).toMatchObject({ status: 409, code: 'CLAIM_LIMIT_REACHED' }); // and its snapshot holds the chunk's coupon
    expect((await claimOnce(t.app, partner.headers, templateId, 'late-bird')).status).toBe(201);
    const template = (await t.app.inject({ url: `/v1/coupon-templates/${templateId}`, headers: partner.headers })).json();
    expect(template).toMatchObject({ issuedCount: 2, remaining: 98 });
  });
});
