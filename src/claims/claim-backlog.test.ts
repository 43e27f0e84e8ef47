// The claim backlog gauges are measured from Redis at scrape time, so they keep growing while no
// persister runs (the test app starts no workers: the persister is "paused").
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPartner, createTestApp, templateBody, type TestApp } from '../../test/harness/test-app.ts';
import { metricSample as sample } from '../../test/harness/metrics-text.ts';
import { waitFor } from '../../test/harness/wait-for.ts';

describe('claim backlog metrics', () => {
  let t: TestApp;
  beforeAll(async () => { t = await createTestApp({ distributed: true }); });
  afterAll(async () => { await t.close(); });

  it('reports stream length and a growing consumer lag while nothing persists the claims', async () => {
    const partner = await createPartner(t.app);
    const template = (await t.app.inject({ method: 'POST', url: '/v1/coupon-templates', headers: partner.headers, payload: templateBody() })).json<{ id: string }>();
    for (const userId of ['backlog-user-1', 'backlog-user-2']) {
      const claim = await t.app.inject({ method: 'POST', url: `/v1/coupon-templates/${template.id}/claims`, headers: partner.headers, payload: { userId } });
      expect(claim.statusCode).toBe(201);
    }
    const scrape = async () => (await t.app.inject({ url: '/metrics' })).body;

    const first = await scrape();
    expect(sample(first, `stampede_claim_stream_length{template="${template.id}"}`)).toBe(2);
    const firstLag = sample(first, `stampede_claim_consumer_lag_seconds{template="${template.id}"}`)!;
    expect(firstLag).toBeGreaterThanOrEqual(0);

    // The lag is measured at scrape time: scrape until a second has passed since the oldest claim.
    const later = await waitFor(async () => {
      const text = await scrape();
      return sample(text, `stampede_claim_consumer_lag_seconds{template="${template.id}"}`)! >= firstLag + 1 && text;
    }, { what: 'the consumer lag to grow by a second' });
    expect(sample(later, `stampede_claim_stream_length{template="${template.id}"}`)).toBe(2);
    expect(sample(later, `stampede_claim_consumer_lag_seconds{template="${template.id}"}`)).toBeGreaterThanOrEqual(firstLag + 1);
  });
});
