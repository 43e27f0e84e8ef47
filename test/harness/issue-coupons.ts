// Issues coupons straight into PostgreSQL for tests of what happens after a claim (redemption,
// reads, expiry) without going through a claim gate.
import type { FastifyInstance } from 'fastify';
import { v7 as uuidv7 } from 'uuid';
import type { Queryable } from '../../src/infra/db.ts';
import { templateBody } from './test-app.ts';

/** Creates a template through the API; returns its id. */
export async function createTemplate(app: FastifyInstance, headers: Record<string, string>, overrides: Record<string, unknown> = {}): Promise<string> {
  const response = await app.inject({ method: 'POST', url: '/v1/coupon-templates', headers, payload: templateBody(overrides) });
  if (response.statusCode !== 201) throw new Error(`template creation failed: ${response.statusCode} ${response.body}`);
  return response.json<{ id: string }>().id;
}

/** Inserts one ISSUED coupon of the template for the user; returns its id (UUIDv7, like claims). */
export async function issueCoupon(
  db: Queryable,
  c: { partnerId: string; templateId: string; userId: string; validFrom: Date; validUntil: Date },
): Promise<string> {
  const id = uuidv7();
  await db.query(
    `INSERT INTO coupons (id, partner_id, template_id, user_id, seq, valid_from, valid_until)
     SELECT $1, $2, $3, $4, COALESCE(MAX(seq), 0) + 1, $5, $6 FROM coupons WHERE template_id = $3 AND user_id = $4`,
    [id, c.partnerId, c.templateId, c.userId, c.validFrom, c.validUntil],
  );
  return id;
}
