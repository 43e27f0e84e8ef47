// The fault schedule of a chaos run, derived from its seed alone: the same seed and length give
// the same faults at the same offsets, so a failing run can be replayed (`--seed N`).

export type FaultKind = 'kill-serve' | 'kill-worker' | 'pause-worker' | 'kill-redis' | 'restart-postgres';

export interface Fault {
  /** Milliseconds after the load starts. */
  readonly at: number;
  readonly kind: FaultKind;
  /** Which process: `serve-0`, `worker-1`, `redis`, `postgres`. */
  readonly target: string;
  /** How long the target stays down (or stopped) before it is restarted (or continued). */
  readonly holdMs: number;
}

export interface ScheduleShape {
  readonly durationMs: number;
  readonly serves: number;
  readonly workers: number;
  /** A SIGSTOPped worker stays stopped at least this long: past the persister's reclaim bound. */
  readonly minPauseMs: number;
}

/**
 * mulberry32: a 32-bit seeded generator. Five lines, no dependency: a schedule must be a pure
 * function of the seed, and Math.random cannot be seeded.
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WEIGHTS: ReadonlyArray<readonly [FaultKind, number]> = [
  ['kill-serve', 3], ['kill-worker', 3], ['pause-worker', 2], ['kill-redis', 2], ['restart-postgres', 2],
];

export function buildSchedule(seed: number, shape: ScheduleShape): Fault[] {
  const random = seededRandom(seed);
  const between = (low: number, high: number) => Math.round(low + random() * (high - low));
  const pick = (): FaultKind => {
    let roll = random() * WEIGHTS.reduce((sum, [, weight]) => sum + weight, 0);
    for (const [kind, weight] of WEIGHTS) if ((roll -= weight) < 0) return kind;
    return WEIGHTS[0]![0];
  };
  const faults: Fault[] = [];
  const busyUntil = new Map<string, number>();
  // Faults start after a calm first stretch and stop early enough for the last one to heal under load.
  for (let at = between(2_000, 5_000); at < shape.durationMs - 8_000; at += between(2_000, 9_000)) {
    const kind = pick();
    const target = kind === 'kill-serve' ? `serve-${between(0, shape.serves - 1)}`
      : kind === 'kill-worker' || kind === 'pause-worker' ? `worker-${between(0, shape.workers - 1)}`
        : kind === 'kill-redis' ? 'redis' : 'postgres';
    const holdMs = kind === 'pause-worker' ? shape.minPauseMs + between(500, 3_000) : between(500, 4_000);
    // Faults stack (a worker dies while Redis is down), but one target takes one fault at a time.
    if ((busyUntil.get(target) ?? 0) > at) continue;
    busyUntil.set(target, at + holdMs + 1_000);
    faults.push({ at, kind, target, holdMs });
  }
  return faults;
}
