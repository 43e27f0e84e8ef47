// The first-claim scenario of issue 15, shared by src/claims/event-memory.test.ts (1,000,000
// holders) and bench/claim/first-claim.ts (10,000,000): an event already distributed to every
// holder, then one claim before its window, the first claim when it opens, and claims during it,
// each measured in the process that runs the gate (RSS) and in Redis (used_memory, and the
// event's own keys).
import { v7 as uuidv7 } from 'uuid';
import { REFUSALS, type ClaimGate, type ClaimResult } from '../../src/claims/claim-gate.ts';
import { templateClaimKeys } from '../../src/claims/redis-keys.ts';
import type { CouponTemplate } from '../../src/coupons/template-repository.ts';
import type { Db } from '../../src/infra/db.ts';
import type { Redis } from '../../src/infra/redis.ts';

const HOLDER_CHUNK = 250_000;

export const holderId = (n: number): string => `holder-${String(n).padStart(9, '0')}`;

/**
 * Gives one coupon (seq 1, no slot, as a distribution does) to holders 1..count, generated inside
 * PostgreSQL, two chunks at a time, and raises issued_count by as many.
 */
export async function distributeToHolders(db: Db, template: { id: string; partnerId: string }, count: number): Promise<void> {
  let next = 1;
  const loader = async () => {
    for (let first = next; first <= count; first = next) {
      const size = Math.min(HOLDER_CHUNK, count - first + 1);
      next += size;
      // Time-ordered ids (like UUIDv7) from one origin, so the primary key grows at its right edge.
      await db.query(
        `WITH inserted AS (
           INSERT INTO coupons (id, partner_id, template_id, user_id, seq, valid_from, valid_until, issued_at)
           SELECT (lpad(to_hex($4::bigint + n / 100), 12, '0') || '7000' || '8' || lpad(to_hex(n), 15, '0'))::uuid,
                  $1, $2, 'holder-' || lpad(n::text, 9, '0'), 1, now(), now() + interval '30 days', now()
             FROM generate_series($3::bigint, $3::bigint + $5 - 1) AS n
           RETURNING 1)
         UPDATE coupon_templates SET issued_count = issued_count + (SELECT count(*) FROM inserted) WHERE id = $2`,
        [template.partnerId, template.id, first, Date.now() - 86_400_000, size],
      );
    }
  };
  await Promise.all([loader(), loader()]);
  await db.query('ANALYZE coupons');
}

export interface PhaseFigures {
  readonly phase: 'before the window' | 'first claim at opening' | 'during the event';
  readonly claims: number;
  /** Outcome of each claim: 'issued' or the refusal's metric outcome. */
  readonly outcomes: Record<string, number>;
  /** The phase's first claim. */
  readonly firstLatencyMs: number;
  /**
   * At opening: the best of the first claims of `openings` fresh openings of the event (a new gate
   * with no state for it each time), the usual filter of scheduler noise on a shared machine.
   */
  readonly bestFirstLatencyMs: number;
  readonly maxLatencyMs: number;
  readonly rssGrowthMb: number;
  readonly redisUsedMemoryGrowthMb: number | null;
  /** Memory of the event's own Redis keys after the phase (MEMORY USAGE). */
  readonly redisEventKeysMb: number | null;
}

const MB = 1024 * 1024;
const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

async function redisUsedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)![1]);
}

async function eventKeysMemory(redis: Redis, templateId: string): Promise<number> {
  const keys = templateClaimKeys(templateId);
  const sizes = await Promise.all([keys.state, keys.users, keys.claims, keys.stream].map((key) => redis.memoryUsage(key)));
  return sizes.reduce<number>((sum, size) => sum + (size ?? 0), 0);
}

/**
 * Runs the three phases against `gate`. `template` is the stored event (its window in the future);
 * the opening and the event are played by the same template with its window moved to now, in
 * PostgreSQL too (`db`): a gate takes the settings in force from the store when it opens the event. `newcomer` names users who
 * hold nothing yet (a distinct prefix per mode, so two runs on one event do not collide).
 */
export async function measureFirstClaims(options: {
  gate: ClaimGate;
  template: CouponTemplate;
  /** Where the event's window is moved to now before the opening. */
  db: Db;
  holders: number;
  newcomer: (n: number) => string;
  /** 0 or 1: which half of the holders claims, so two runs on one event pick different holders. */
  half: 0 | 1;
  redis?: Redis;
  duringClaims?: number;
  /** Openings measured at opening (default 1); each after the first asks `reopen` for a fresh gate. */
  openings?: number;
  reopen?: () => Promise<ClaimGate>;
  /** Called after each phase, before the next one (checks of what the phase left behind). */
  onPhase?: (phase: PhaseFigures['phase']) => Promise<void>;
}): Promise<PhaseFigures[]> {
  const { template, holders, redis } = options;
  let gate = options.gate;
  const open: CouponTemplate = { ...template, claimStartsAt: new Date(Date.now() - 1_000), claimEndsAt: new Date(Date.now() + 3_600_000) };
  const phase = async (name: PhaseFigures['phase'], event: CouponTemplate, users: string[]): Promise<PhaseFigures> => {
    const rssBefore = process.memoryUsage().rss;
    const redisBefore = redis ? await redisUsedMemory(redis) : 0;
    const outcomes: Record<string, number> = {};
    const latencies: number[] = [];
    // Across the phase's first claim at opening (later ones reopen the event), the whole phase otherwise.
    let rssAfter = 0;
    let redisAfter = 0;
    for (const [index, userId] of users.entries()) {
      if (name === 'first claim at opening' && index > 0) gate = await options.reopen!();
      const started = performance.now();
      const result: ClaimResult = await gate.claim(event, uuidv7, userId);
      latencies.push(performance.now() - started);
      const outcome = 'issued' in result ? 'issued' : REFUSALS[result.refusal].outcome;
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      if (name === 'during the event') continue;
      if (index === 0) rssAfter = process.memoryUsage().rss;
      if (index === 0 && redis) redisAfter = await redisUsedMemory(redis);
    }
    if (name === 'during the event') {
      rssAfter = process.memoryUsage().rss;
      if (redis) redisAfter = await redisUsedMemory(redis);
    }
    await options.onPhase?.(name);
    return {
      phase: name,
      claims: users.length,
      outcomes,
      firstLatencyMs: round(latencies[0]!),
      bestFirstLatencyMs: round(name === 'first claim at opening' ? Math.min(...latencies) : latencies[0]!),
      maxLatencyMs: round(Math.max(...latencies)),
      rssGrowthMb: round((rssAfter - rssBefore) / MB),
      redisUsedMemoryGrowthMb: redis ? round((redisAfter - redisBefore) / MB) : null,
      redisEventKeysMb: redis ? round((await eventKeysMemory(redis, template.id)) / MB, 4) : null,
    };
  };
  // Spread over the holders: the first, the last and evenly in between; then newcomers, and a
  // holder who already claimed at the opening (now at the limit of 2).
  const during = options.duringClaims ?? 200;
  const spread = Array.from({ length: during / 2 }, (_, i) => holderId(Math.max(10, Math.floor(((i + 1) * holders) / (during / 2))) - options.half));
  const openers = Array.from({ length: options.openings ?? 1 }, (_, i) => holderId(2 + options.half + 2 * i));
  const newcomers = Array.from({ length: during / 2 }, (_, i) => options.newcomer(i));
  const before = await phase('before the window', template, [holderId(1)]);
  await options.db.query('UPDATE coupon_templates SET claim_starts_at = $2, claim_ends_at = $3 WHERE id = $1',
    [template.id, open.claimStartsAt, open.claimEndsAt]);
  return [
    before,
    await phase('first claim at opening', open, openers),
    await phase('during the event', open, [...spread.flatMap((holder, i) => [holder, newcomers[i]!]), openers[0]!]),
  ];
}
