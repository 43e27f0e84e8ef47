// Cancelling a job that has already finished is refused with 409 JOB_NOT_CANCELLABLE (and the job
// is left as it was); cancelling a cancelled job again answers it as it is.
import { describe, expect, it } from 'vitest';
import { appWithJobQueue } from '../../test/harness/job-app.ts';
import { createPartner, templateBody } from '../../test/harness/test-app.ts';
import { waitFor } from '../../test/harness/wait-for.ts';

describe('cancelling a finished job', () => {
  const t = appWithJobQueue();

  it('409 JOB_NOT_CANCELLABLE once it succeeded; a second cancel of a cancelled job is answered as it is', async () => {
    const partner = await createPartner(t.app);
    const template = (await t.app.inject({ method: 'POST', url: '/v1/coupon-templates', headers: partner.headers, payload: templateBody({ totalQuantity: null }) })).json();
    const accepted = await t.app.inject({
      method: 'POST', url: `/v1/coupon-templates/${template.id}/distributions`, headers: partner.headers, payload: { userIds: ['ann', 'bob'] },
    });
    expect(accepted.statusCode).toBe(202);
    const { jobId } = accepted.json<{ jobId: string }>();
    const status = async () => (await t.app.inject({ url: `/v1/jobs/${jobId}`, headers: partner.headers })).json().status as string;
    await waitFor(async () => (await status()) === 'SUCCEEDED', { timeoutMs: 60_000, what: 'the distribution to succeed' });

    const refused = await t.app.inject({ method: 'POST', url: `/v1/jobs/${jobId}/cancel`, headers: partner.headers });
    expect(refused.statusCode).toBe(409);
    expect(refused.json().error).toMatchObject({ code: 'JOB_NOT_CANCELLABLE', message: 'The job has already succeeded.' });
    expect(await status()).toBe('SUCCEEDED');

    // A job cancelled while scheduled: cancelling it again is not a refusal.
    const later = await t.app.inject({
      method: 'POST', url: '/v1/points/accruals', headers: partner.headers,
      payload: { scheduledAt: new Date(Date.now() + 3_600_000).toISOString(), items: [{ userId: 'u1', amount: 1, idempotencyKey: 'k1' }] },
    });
    const scheduled = later.json<{ jobId: string }>().jobId;
    const cancel = () => t.app.inject({ method: 'POST', url: `/v1/jobs/${scheduled}/cancel`, headers: partner.headers });
    expect((await cancel()).json().status).toBe('CANCELLED');
    const again = await cancel();
    expect([again.statusCode, again.json().status]).toEqual([200, 'CANCELLED']);
  });
});
