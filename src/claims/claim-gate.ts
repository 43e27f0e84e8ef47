// The claim gate: the one port of the project, with two adapters. It decides a claim (window,
// per-user limit, stock) atomically and records it so that it reaches PostgreSQL:
//   - RedisClaimGate (distributed): one Lua script per claim, persisted later by the claim persister;
//   - MemoryClaimGate (embedded): in-process counters, group commit before the answer.
// Both run the same contract suite (claims.test.ts).
import type { CouponTemplate } from '../coupons/template-repository.ts';
import type { ErrorCode } from '../errors.ts';

/**
 * Why a claim was refused. The values are the negative codes claim-5.lua returns; this enum is the
 * one place they are given a meaning.
 */
export enum ClaimRefusal {
  /** Redis has no state for the template yet (internal: the Redis gate loads it and retries). */
  NotLoaded = -1,
  NotOpen = -2,
  Closed = -3,
  LimitReached = -4,
  SoldOut = -5,
  /** Redis holds the event but not this user's holdings yet (internal: the gate loads them and retries). */
  UserNotLoaded = -6,
  /** The event is paused (PATCH … {paused: true}): inside the window, before any other check. */
  Paused = -7,
  /** The Idempotency-Key was first sent with another user's claim. */
  IdempotencyKeyReused = -8,
}

export type AnsweredRefusal = Exclude<ClaimRefusal, ClaimRefusal.NotLoaded | ClaimRefusal.UserNotLoaded>;

type RefusalCode = Extract<ErrorCode, 'CLAIM_NOT_OPEN' | 'CLAIM_CLOSED' | 'CLAIM_LIMIT_REACHED' | 'SOLD_OUT' | 'CLAIM_PAUSED' | 'IDEMPOTENCY_KEY_REUSED'>;

/** The API error and metric outcome of each refusal a client can see. */
export const REFUSALS: Record<AnsweredRefusal, { code: RefusalCode; outcome: string }> = {
  [ClaimRefusal.NotOpen]: { code: 'CLAIM_NOT_OPEN', outcome: 'not_open' },
  [ClaimRefusal.Closed]: { code: 'CLAIM_CLOSED', outcome: 'closed' },
  [ClaimRefusal.LimitReached]: { code: 'CLAIM_LIMIT_REACHED', outcome: 'limit_reached' },
  [ClaimRefusal.SoldOut]: { code: 'SOLD_OUT', outcome: 'sold_out' },
  [ClaimRefusal.Paused]: { code: 'CLAIM_PAUSED', outcome: 'paused' },
  [ClaimRefusal.IdempotencyKeyReused]: { code: 'IDEMPOTENCY_KEY_REUSED', outcome: 'idempotency_key_reused' },
};

export function isAnsweredRefusal(code: number): code is AnsweredRefusal {
  return code in REFUSALS;
}

/** A coupon the gate issued: where it stands in the event and when it was issued. */
export interface IssuedClaim {
  /** The coupon: the id newCouponId gave, or the first one on a replay of an Idempotency-Key. */
  readonly couponId: string;
  readonly slot: number;
  readonly seq: number;
  readonly issuedAt: Date;
  /** Coupons of the template issued so far, this one included. */
  readonly issuedCount: number;
  /** The coupon's window, from the validity in force when it was issued (absent: from the template). */
  readonly validFrom?: Date;
  readonly validUntil?: Date;
  /** This coupon brought the user to the per-user limit in force: the gate refuses their next claim (absent: not known). */
  readonly reachedLimit?: boolean;
  /** The settings version of the limit reachedLimit was judged by (absent: not known). */
  readonly limitVersion?: number;
}

export type ClaimResult = { readonly issued: IssuedClaim } | { readonly refusal: AnsweredRefusal };

export interface ClaimGate {
  /** Label for metrics: which adapter decided. */
  readonly kind: 'redis' | 'memory';
  /**
   * Decides one claim. `newCouponId` is called at most once, and only when the claim may be
   * issued (a refusal decided without it costs no id). When it resolves with `issued`, the coupon is durable: committed to
   * PostgreSQL (memory) or recorded in Redis with AOF (and on STAMPEDE_REDIS_MIN_REPLICAS
   * replicas) and bound for PostgreSQL (redis). With an `idempotencyKey`, the key's first outcome
   * is answered again (the first coupon, or the same refusal) as long as it survives; a key first
   * used for another user is refused (IdempotencyKeyReused).
   */
  claim(template: CouponTemplate, newCouponId: () => string, userId: string, idempotencyKey?: string): Promise<ClaimResult>;
  /**
   * A refusal this gate answers for a claim without an Idempotency-Key at once, without I/O (what
   * claim() would answer), or undefined: then claim() decides. Never an issue. Lets the claim route
   * answer such claims synchronously (decision 210). Absent: every claim goes to claim(). It only
   * reads (counts nothing), so the claim fast path may ask before it commits (decision 230).
   */
  knownRefusal?(template: CouponTemplate, userId: string): AnsweredRefusal | undefined;
  /** Called when a claim is answered with what knownRefusal said: the adapter counts its shortcuts. */
  answeredKnown?(template: CouponTemplate, refusal: AnsweredRefusal): void;
  /** Coupons issued as the gate sees them now; undefined when it holds no state for the template. */
  issuedCount(template: CouponTemplate): Promise<number | undefined>;
  /**
   * Puts the template's claim settings (quantity, limit, paused, window, validity) in force for
   * every later claim, atomically with respect to claims, unless the gate holds newer settings
   * (a higher settingsVersion). Refused, changing nothing, when the quantity is below the coupons
   * the gate has issued: resolves with that count. Called by claim-settings.ts under the
   * template's gate lock and row lock.
   */
  applySettings(template: CouponTemplate): Promise<{ readonly refusedIssuedCount?: number }>;
  /** Releases what the adapter holds open besides the shared pools (the refusal-flags subscription). */
  close?(): Promise<void>;
}
