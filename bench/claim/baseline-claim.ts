// The baseline every claim benchmark is measured against (docs/architecture.md, "Claims"): the synchronous
// design most teams start with. One transaction per claim: lock the template row
// (SELECT … FOR UPDATE), check window and stock, count the user's coupons, INSERT the coupon,
// raise issued_count, COMMIT, then answer. Correct, but every claim of an event queues on one
// row lock and waits for its own commit (an fsync), so an event is limited to what one hot row
// can commit per second. It lives in bench/ only; the product never uses it.
import { v7 as uuidv7 } from 'uuid';
import { toTemplate } from '../../src/coupons/template-repository.ts';
import { couponValidity } from '../../src/coupons/validity.ts';
import { AppError } from '../../src/errors.ts';
import { withTransaction, type Db } from '../../src/infra/db.ts';

export interface BaselineCoupon {
  couponId: string;
  templateId: string;
  userId: string;
  status: 'ISSUED';
  validFrom: string;
  validUntil: string;
}

type TemplateRow = Parameters<typeof toTemplate>[0];

export async function claimWithRowLock(db: Db, templateId: string, userId: string): Promise<BaselineCoupon> {
  return withTransaction(db, async (tx) => {
    const { rows } = await tx.query<TemplateRow>('SELECT * FROM coupon_templates WHERE id = $1 FOR UPDATE', [templateId]);
    if (!rows[0]) throw new AppError('TEMPLATE_NOT_FOUND');
    const template = toTemplate(rows[0]);
    const now = new Date();
    if (now < template.claimStartsAt) throw new AppError('CLAIM_NOT_OPEN');
    if (now >= template.claimEndsAt) throw new AppError('CLAIM_CLOSED');
    if (template.totalQuantity !== null && template.issuedCount >= template.totalQuantity) throw new AppError('SOLD_OUT');
    const held = await tx.query<{ held: number }>(
      'SELECT count(*)::int AS held FROM coupons WHERE template_id = $1 AND user_id = $2',
      [templateId, userId],
    );
    const seq = held.rows[0]!.held + 1;
    if (seq > template.perUserLimit) throw new AppError('CLAIM_LIMIT_REACHED');
    const couponId = uuidv7();
    const { validFrom, validUntil } = couponValidity(template.validity, now);
    await tx.query(
      `INSERT INTO coupons (id, partner_id, template_id, user_id, slot, seq, valid_from, valid_until, issued_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [couponId, template.partnerId, templateId, userId, template.issuedCount + 1, seq, validFrom, validUntil, now],
    );
    await tx.query('UPDATE coupon_templates SET issued_count = issued_count + 1 WHERE id = $1', [templateId]);
    return { couponId, templateId, userId, status: 'ISSUED', validFrom: validFrom.toISOString(), validUntil: validUntil.toISOString() };
  });
}
