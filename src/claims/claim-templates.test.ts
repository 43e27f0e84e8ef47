// The claim path's template cache is a bounded LRU: once it is full, loading more templates evicts
// the least recently used one, never the hot template of a live event (the cache used to clear
// itself wholesale at 10,000 entries, sending every live claim back to PostgreSQL at once).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Queryable } from '../infra/db.ts';
import { createPartner, createTestApp, templateBody, type TestApp } from '../../test/harness/test-app.ts';
import { ClaimTemplates } from './claim-templates.ts';

describe('claim template cache', () => {
  let t: TestApp;
  beforeAll(async () => { t = await createTestApp(); });
  afterAll(async () => { await t.close(); });

  it('keeps a hot template while 10,100 others pass through it', async () => {
    const partner = await createPartner(t.app);
    const created = await t.app.inject({ method: 'POST', url: '/v1/coupon-templates', headers: partner.headers, payload: templateBody() });
    const hot = (created.json() as { id: string }).id;
    // 10,100 more templates of the same partner, copied from the first in one statement.
    const { rows } = await t.ctx.db.query<{ id: string }>(
      `INSERT INTO coupon_templates
       SELECT (jsonb_populate_record(NULL::coupon_templates, to_jsonb(t) || jsonb_build_object('id', gen_random_uuid()))).*
         FROM coupon_templates t, generate_series(1, 10100) WHERE t.id = $1 RETURNING id`, [hot]);

    const loads = new Map<string, number>();
    const counting: Queryable = {
      query: ((text: string, values: unknown[]) => {
        const id = values[0] as string;
        loads.set(id, (loads.get(id) ?? 0) + 1);
        return t.ctx.db.query(text, values);
      }) as Queryable['query'],
    };
    // No refresh (Infinity): this counts what the LRU loads, not the 1 s refresh of a hot entry.
    const cache = new ClaimTemplates(counting, Infinity);
    expect((await cache.get(hot))?.id).toBe(hot);
    for (const [index, row] of rows.entries()) {
      expect((await cache.get(row.id))?.id).toBe(row.id);
      if (index % 100 === 0) expect((await cache.get(hot))?.id).toBe(hot); // the live event keeps claiming
    }
    expect((await cache.get(hot))?.id).toBe(hot);
    expect(loads.get(hot)).toBe(1);
    // The cache is bounded: the oldest cold template was evicted and loads again.
    await cache.get(rows[0]!.id);
    expect(loads.get(rows[0]!.id)).toBe(2);
  }, 120_000);
});
