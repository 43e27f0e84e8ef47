// Migration 053: a coupon's template is checked per statement (transition table) and templates are
// permanent; the slot is unique per template among the coupons that have one.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppContext } from '../context.ts';
import { closeContext, inRolledBackTransaction, testContext } from '../../test/harness/test-app.ts';

let ctx: AppContext;
let partnerId: string;

beforeAll(async () => {
  ctx = await testContext();
  partnerId = randomUUID();
  await ctx.db.query('INSERT INTO partners (id, name) VALUES ($1, $2)', [partnerId, `coupon-schema-${partnerId}`]);
});
afterAll(async () => closeContext(ctx));

const missingTemplate = { code: '23503', constraint: 'coupons_template_id_fkey' };
const refused = { code: '23001' }; // restrict_violation

async function newTemplate(): Promise<string> {
  const id = randomUUID();
  await ctx.db.query(
    `INSERT INTO coupon_templates (id, partner_id, name, discount_type, discount_value, claim_starts_at, claim_ends_at, validity_type, validity_days)
     VALUES ($1, $2, 'schema', 'FIXED', 100, now(), now() + interval '1 day', 'RELATIVE', 30)`, [id, partnerId]);
  return id;
}

/** Inserts coupons (template, user, slot) in one statement. */
const insertCoupons = (rows: Array<[string, string, number | null]>) => ctx.db.query(
  `INSERT INTO coupons (id, partner_id, template_id, user_id, slot, seq, valid_from, valid_until)
   SELECT gen_random_uuid(), $1, t, u, s, 1, now(), now() + interval '1 day'
     FROM unnest($2::uuid[], $3::text[], $4::int[]) AS r (t, u, s)`,
  [partnerId, rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2])]);

describe('coupon references and slots (migration 053)', () => {
  it('refuses the whole statement when one coupon names a template that does not exist, with the old key name', async () => {
    const templateId = await newTemplate();
    const rows = Array.from({ length: 500 }, (_, n): [string, string, null] => [templateId, `ref-${n}`, null]);
    rows[250] = [randomUUID(), 'ref-missing', null];
    await expect(insertCoupons(rows)).rejects.toMatchObject(missingTemplate);
    const { rows: [counts] } = await ctx.db.query<{ n: number }>('SELECT count(*)::int AS n FROM coupons WHERE template_id = $1', [templateId]);
    expect(counts!.n).toBe(0);
  });

  it('does not count a template another transaction has inserted but not committed', async () => {
    const other = await ctx.db.connect();
    try {
      await other.query('BEGIN');
      const id = randomUUID();
      await other.query(
        `INSERT INTO coupon_templates (id, partner_id, name, discount_type, discount_value, claim_starts_at, claim_ends_at, validity_type, validity_days)
         VALUES ($1, $2, 'uncommitted', 'FIXED', 100, now(), now() + interval '1 day', 'RELATIVE', 30)`, [id, partnerId]);
      await expect(insertCoupons([[id, 'ref-uncommitted', null]])).rejects.toMatchObject(missingTemplate);
      await other.query('COMMIT');
      await insertCoupons([[id, 'ref-uncommitted', null]]);
    } finally {
      other.release();
    }
  });

  it('keeps templates permanent and a coupon on its template', async () => {
    const templateId = await newTemplate();
    const unused = await newTemplate();
    await insertCoupons([[templateId, 'permanent', null]]);
    await expect(ctx.db.query('DELETE FROM coupon_templates WHERE id = $1', [unused])).rejects.toMatchObject(refused);
    await expect(ctx.db.query('UPDATE coupon_templates SET id = $2 WHERE id = $1', [unused, randomUUID()])).rejects.toMatchObject(refused);
    await expect(ctx.db.query('UPDATE coupons SET template_id = $2 WHERE template_id = $1', [templateId, unused])).rejects.toMatchObject(refused);
    await inRolledBackTransaction(ctx.db, async (tx) => {
      await expect(tx.query('TRUNCATE coupon_templates CASCADE')).rejects.toMatchObject(refused);
    });
    // What is updated still works: counts, and the same template named again.
    await ctx.db.query('UPDATE coupon_templates SET issued_count = issued_count + 1 WHERE id = $1', [templateId]);
    await ctx.db.query(`UPDATE coupons SET status = 'EXPIRED', template_id = template_id WHERE template_id = $1`, [templateId]);
  });

  it('refuses a slot given twice in one template, and takes any number of coupons without a slot', async () => {
    const templateId = await newTemplate();
    const other = await newTemplate();
    await insertCoupons([[templateId, 'slot-a', 1], [templateId, 'slot-b', null], [templateId, 'slot-c', null], [other, 'slot-a', 1]]);
    await expect(insertCoupons([[templateId, 'slot-d', 1]])).rejects.toMatchObject({ code: '23505', constraint: 'coupons_slot_once' });
    const { rowCount } = await ctx.db.query(
      `INSERT INTO coupons (id, partner_id, template_id, user_id, slot, seq, valid_from, valid_until)
       VALUES (gen_random_uuid(), $1, $2, 'slot-e', 1, 1, now(), now()) ON CONFLICT DO NOTHING`, [partnerId, templateId]);
    expect(rowCount).toBe(0); // the claim path's untargeted ON CONFLICT still sees the slot index
  });
});
