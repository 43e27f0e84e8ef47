// The claim decision as pure functions: window, pause, per-user limit, stock, in that order. The
// in-process gate runs them; claim-5.lua is the same rule inside Redis (keep the two in step).
import { ClaimRefusal, type AnsweredRefusal } from './claim-gate.ts';

export interface ClaimWindow {
  readonly claimStartsAt: number;
  readonly claimEndsAt: number;
}

export interface ClaimCounters extends ClaimWindow {
  /** null: unlimited. */
  readonly totalQuantity: number | null;
  readonly perUserLimit: number;
  readonly issued: number;
  /** Claims are refused (CLAIM_PAUSED) inside the window while paused. */
  readonly paused?: boolean;
}

/**
 * The window alone: decided before a gate opens the event, so a claim outside it costs no state,
 * no query and marks nothing live.
 */
export function windowRefusal(window: ClaimWindow, nowMs: number): ClaimRefusal.NotOpen | ClaimRefusal.Closed | undefined {
  if (nowMs < window.claimStartsAt) return ClaimRefusal.NotOpen;
  if (nowMs >= window.claimEndsAt) return ClaimRefusal.Closed;
  return undefined;
}

export function soldOut(counters: Pick<ClaimCounters, 'totalQuantity' | 'issued'>): boolean {
  return counters.totalQuantity !== null && counters.issued >= counters.totalQuantity;
}

/** Why this claim must be refused, or undefined when it may take a coupon. Times in epoch ms. */
export function claimRefusal(counters: ClaimCounters, heldByUser: number, nowMs: number): AnsweredRefusal | undefined {
  const window = windowRefusal(counters, nowMs);
  if (window !== undefined) return window;
  if (counters.paused) return ClaimRefusal.Paused;
  if (heldByUser >= counters.perUserLimit) return ClaimRefusal.LimitReached;
  if (soldOut(counters)) return ClaimRefusal.SoldOut;
  return undefined;
}
