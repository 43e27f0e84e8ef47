// Helpers for claim-path tests: firing claims, waiting for the persister, reading the rows.
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../src/context.ts';
import type { Queryable } from '../../src/infra/db.ts';
import { startClaimPersister } from '../../src/claims/claim-persister.ts';
import { templateClaimKeys } from '../../src/claims/redis-keys.ts';
import { waitFor } from './wait-for.ts';

export interface ClaimAnswer {
  readonly userId: string;
  readonly status: number;
  readonly code?: string;
  readonly couponId?: string;
}

export async function claimOnce(app: FastifyInstance, headers: Record<string, string>, templateId: string, userId: string): Promise<ClaimAnswer> {
  const response = await app.inject({ method: 'POST', url: `/v1/coupon-templates/${templateId}/claims`, headers, payload: { userId } });
  const body = response.json();
  return { userId, status: response.statusCode, code: body.error?.code, couponId: body.couponId };
}

/** Every user sends `clicks` claims at the same time, all users at once. */
export async function stampede(app: FastifyInstance, headers: Record<string, string>, templateId: string, users: number, clicks: number, prefix = 'user'): Promise<ClaimAnswer[]> {
  const answers = await Promise.all(Array.from({ length: users }, (_, u) =>
    Promise.all(Array.from({ length: clicks }, () => claimOnce(app, headers, templateId, `${prefix}-${u}`)))));
  return answers.flat();
}

export interface CouponRow {
  id: string;
  user_id: string;
  slot: number | null;
  seq: number;
  valid_from: Date;
  valid_until: Date;
  issued_at: Date;
}

export async function couponRows(db: Queryable, templateId: string): Promise<CouponRow[]> {
  const { rows } = await db.query<CouponRow>('SELECT id, user_id, slot, seq, valid_from, valid_until, issued_at FROM coupons WHERE template_id = $1 ORDER BY slot', [templateId]);
  return rows;
}

export async function issuedCountInDb(db: Queryable, templateId: string): Promise<number> {
  const { rows } = await db.query<{ issued_count: number }>('SELECT issued_count FROM coupon_templates WHERE id = $1', [templateId]);
  return rows[0]!.issued_count;
}

/**
 * Distributed mode: runs a persister until the template's stream is empty. Embedded mode has
 * nothing pending (the group commit answered after COMMIT), so this returns at once.
 */
export async function drainClaims(ctx: AppContext, templateId: string, timeoutMs = 30_000): Promise<void> {
  if (!ctx.redis) return;
  const redis = ctx.redis;
  const stop = await startClaimPersister(ctx);
  try {
    await waitFor(async () => (await redis.xLen(templateClaimKeys(templateId).stream)) === 0, { timeoutMs, what: `stream of ${templateId} to drain` });
  } finally {
    await stop();
  }
}
