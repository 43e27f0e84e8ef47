// The claim decision as a pure function: window, per-user limit, stock, in that order. The
// in-process gate runs it; claim-4.lua is the same rule inside Redis (keep the two in step).
import { ClaimRefusal, type AnsweredRefusal } from './claim-gate.ts';

export interface ClaimCounters {
  /** null: unlimited. */
  readonly totalQuantity: number | null;
  readonly perUserLimit: number;
  readonly claimStartsAt: number;
  readonly claimEndsAt: number;
  readonly issued: number;
}

/** Why this claim must be refused, or undefined when it may take a coupon. Times in epoch ms. */
export function claimRefusal(counters: ClaimCounters, heldByUser: number, nowMs: number): AnsweredRefusal | undefined {
  if (nowMs < counters.claimStartsAt) return ClaimRefusal.NotOpen;
  if (nowMs >= counters.claimEndsAt) return ClaimRefusal.Closed;
  if (heldByUser >= counters.perUserLimit) return ClaimRefusal.LimitReached;
  if (counters.totalQuantity !== null && counters.issued >= counters.totalQuantity) return ClaimRefusal.SoldOut;
  return undefined;
}
