// The points.expiring digest: once a day per partner (the schedule below), the users whose points
// expire within the partner's notice (points_expiring_notice_days, default 7), announced on the
// webhook outbox to the partner's webhooks that chose points.expiring. Every worker process runs
// the schedule; the day's guard row makes one of them write the digest, in the transaction of
// the announcement.
import type { AppContext, WorkerStarter } from '../context.ts';
import { withRetry, withTransaction } from '../infra/db.ts';
import { startCronTask } from '../infra/schedule.ts';
import { EXPIRING_USERS_LISTED, type PointsExpiringPayload } from '../jobs/domain-event-messages.ts';
import { announceDomainEvent } from '../jobs/webhook-repository.ts';
import { claimDigestDay, expiringPoints, partnersWantingExpiringDigest, recordDigestTotals } from './expiring-digest-repository.ts';

const DAY_MS = 86_400_000;

export interface DigestResult {
  /** Partners whose digest of the day this run wrote (with or without users to announce). */
  readonly written: number;
  /** Deliveries queued. */
  readonly announced: number;
}

export async function sendExpiringDigests(ctx: AppContext, now: Date): Promise<DigestResult> {
  const day = now.toISOString().slice(0, 10);
  let written = 0;
  let announced = 0;
  for (const partner of await partnersWantingExpiringDigest(ctx.db)) {
    const outcome = await withRetry(() => withTransaction(ctx.db, async (tx) => {
      if (!(await claimDigestDay(tx, partner.id, day))) return { wrote: false, queued: 0 };
      const until = new Date(now.getTime() + partner.noticeDays * DAY_MS);
      const expiring = await expiringPoints(tx, partner.id, now, until, EXPIRING_USERS_LISTED);
      await recordDigestTotals(tx, partner.id, day, { users: expiring.userCount, points: expiring.points });
      if (expiring.userCount === 0) return { wrote: true, queued: 0 };
      const payload: PointsExpiringPayload = {
        event: 'points.expiring', occurredAt: now.toISOString(), withinDays: partner.noticeDays, until: until.toISOString(),
        userCount: expiring.userCount, points: expiring.points, users: expiring.users, truncated: expiring.truncated,
      };
      return { wrote: true, queued: await announceDomainEvent(tx, partner.id, payload) };
    }));
    if (outcome.wrote) written++;
    announced += outcome.queued;
  }
  return { written, announced };
}

/** Runs the digest at every minute matching config.pointsExpiringSchedule (default 08:00 UTC daily). */
export const startPointsExpiringDigest: WorkerStarter = async (ctx) =>
  startCronTask('points-expiring-digest', ctx.config.pointsExpiringSchedule, ctx.logger, () => sendExpiringDigests(ctx, ctx.clock()));
