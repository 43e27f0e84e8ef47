// SQL of the points.expiring digest: which partners want it, the once-a-day guard row, and the
// users whose unexpired points run out within the partner's notice.
import type { Queryable } from '../infra/db.ts';
import type { ExpiringUser } from '../jobs/domain-event-messages.ts';

export interface DigestPartner {
  readonly id: string;
  readonly noticeDays: number;
}

/** Partners with at least one webhook subscribed to points.expiring. */
export async function partnersWantingExpiringDigest(db: Queryable): Promise<DigestPartner[]> {
  const { rows } = await db.query<DigestPartner>(
    `SELECT p.id, p.points_expiring_notice_days AS "noticeDays" FROM partners p
      WHERE EXISTS (SELECT 1 FROM webhooks w WHERE w.partner_id = p.id AND 'points.expiring' = ANY (w.events))
      ORDER BY p.id`);
  return rows;
}

/**
 * Takes the partner's digest of this UTC day, in the caller's transaction; false when another
 * process (or an earlier run) already did. The row commits or rolls back with the announcement.
 */
export async function claimDigestDay(tx: Queryable, partnerId: string, day: string): Promise<boolean> {
  const { rowCount } = await tx.query(
    'INSERT INTO points_expiring_digests (partner_id, digest_date, users, points) VALUES ($1, $2::date, 0, 0) ON CONFLICT DO NOTHING',
    [partnerId, day]);
  return rowCount === 1;
}

export async function recordDigestTotals(tx: Queryable, partnerId: string, day: string, totals: { users: number; points: number }): Promise<void> {
  await tx.query('UPDATE points_expiring_digests SET users = $3, points = $4 WHERE partner_id = $1 AND digest_date = $2::date',
    [partnerId, day, totals.users, totals.points]);
}

/**
 * Per user and point type, the points of unexpired lots that expire in (now, until], soonest
 * first, at most `limit` of them; the totals (distinct users, points) cover them all.
 */
export async function expiringPoints(db: Queryable, partnerId: string, now: Date, until: Date, limit: number) {
  const { rows } = await db.query<{ user_id: string; point_type: string; points: string; first_expires_at: Date; entries: string; users: string; total: string }>(
    `WITH expiring AS (
       SELECT w.user_id, w.point_type, sum(l.remaining) AS points, min(l.expires_at) AS first_expires_at
         FROM point_lots l JOIN point_wallets w ON w.id = l.wallet_id
        WHERE w.partner_id = $1 AND l.remaining > 0 AND l.expires_at > $2 AND l.expires_at <= $3
        GROUP BY w.user_id, w.point_type)
     SELECT user_id, point_type, points, first_expires_at, (SELECT count(*) FROM expiring) AS entries,
            (SELECT count(DISTINCT user_id) FROM expiring) AS users, (SELECT sum(points) FROM expiring) AS total
       FROM expiring ORDER BY first_expires_at, user_id, point_type LIMIT $4`,
    [partnerId, now, until, limit]);
  const users: ExpiringUser[] = rows.map((row) => ({
    userId: row.user_id, pointType: row.point_type, points: Number(row.points), firstExpiresAt: row.first_expires_at.toISOString(),
  }));
  const entries = Number(rows[0]?.entries ?? 0);
  return { users, truncated: entries > users.length, userCount: Number(rows[0]?.users ?? 0), points: Number(rows[0]?.total ?? 0) };
}
