// Per-event claim counters for the live stream (live-feed.ts), fed by the claim route. Only events
// somebody watches have counters; for every other event a claim pays one Map miss. For a watched
// one it pays two array increments: fixed typed arrays, nothing allocated per claim.

/** Claim outcomes as the route reports them (the `stampede_claims_total` outcome label). */
export const LIVE_OUTCOMES = ['issued', 'sold_out', 'limit_reached', 'not_open', 'closed', 'paused', 'other'] as const;
export type LiveOutcome = (typeof LIVE_OUTCOMES)[number];

const OUTCOME_INDEX: Readonly<Record<string, number>> = Object.fromEntries(LIVE_OUTCOMES.map((outcome, index) => [outcome, index]));
const OTHER = LIVE_OUTCOMES.indexOf('other');

// Latency buckets grow by 20 % from 50 µs to about 60 s: a p99 read from them is within 20 % of
// the true one, which is what an operator reads off a console.
const FIRST_BOUND_MS = 0.05;
const GROWTH = 1.2;
const BUCKETS = 78;
const LOG_GROWTH = Math.log(GROWTH);
/** Upper bound (ms) of each latency bucket. */
export const LATENCY_BOUNDS_MS: readonly number[] = Array.from({ length: BUCKETS }, (_, i) => FIRST_BOUND_MS * GROWTH ** i);

export function latencyBucket(ms: number): number {
  if (!(ms > FIRST_BOUND_MS)) return 0;
  return Math.min(BUCKETS - 1, Math.ceil(Math.log(ms / FIRST_BOUND_MS) / LOG_GROWTH - 1e-9));
}

/** The upper bound of the bucket holding the q-quantile, or null with no sample. */
export function quantileMs(buckets: ArrayLike<number>, q: number): number | null {
  let total = 0;
  for (let i = 0; i < buckets.length; i++) total += buckets[i]!;
  if (total === 0) return null;
  const rank = Math.ceil(q * total);
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    seen += buckets[i]!;
    if (seen >= rank) return LATENCY_BOUNDS_MS[i]!;
  }
  return LATENCY_BOUNDS_MS[BUCKETS - 1]!;
}

/** What one event's claims did since the last read. */
export class EventCounters {
  readonly outcomes = new Float64Array(LIVE_OUTCOMES.length);
  readonly latency = new Uint32Array(BUCKETS);

  /** Counts per outcome and the latency quantile since the previous call, then starts afresh. */
  take(): { counts: Record<LiveOutcome, number>; p99Ms: number | null } {
    const counts = Object.fromEntries(LIVE_OUTCOMES.map((outcome, index) => [outcome, this.outcomes[index]!])) as Record<LiveOutcome, number>;
    const p99Ms = quantileMs(this.latency, 0.99);
    this.outcomes.fill(0);
    this.latency.fill(0);
    return { counts, p99Ms };
  }
}

export class LiveClaimCounters {
  private readonly watched = new Map<string, EventCounters>();

  /** The claim route's hook: one claim of `templateId` ended with `outcome` after `latencyMs`. */
  record(templateId: string, outcome: string, latencyMs: number): void {
    const counters = this.watched.get(templateId);
    if (counters === undefined) return;
    counters.outcomes[OUTCOME_INDEX[outcome] ?? OTHER]! += 1;
    counters.latency[latencyBucket(latencyMs)]! += 1;
  }

  /** Starts counting an event's claims (its first viewer arrived). */
  watch(templateId: string): EventCounters {
    let counters = this.watched.get(templateId);
    if (!counters) {
      counters = new EventCounters();
      this.watched.set(templateId, counters);
    }
    return counters;
  }

  /** Stops counting (its last viewer left). */
  unwatch(templateId: string): void {
    this.watched.delete(templateId);
  }

  get watchedCount(): number {
    return this.watched.size;
  }
}
