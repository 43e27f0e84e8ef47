// The bench:points workload, generated up front (seeded, so runs are comparable): 60% earn, 30%
// use, 10% transfer over WALLETS users of which HOT receive half the traffic; every request has its
// own Idempotency-Key and 10% are sent a second time with the same key right after their answer.

export type Kind = 'earn' | 'use' | 'transfer';

export interface PlannedRequest {
  readonly kind: Kind;
  readonly key: string;
  readonly body: Record<string, string | number>;
  /** Sent again with the same key and body after the first answer (a client retry). */
  readonly retry: boolean;
}

export interface WorkloadShape {
  readonly wallets: number;
  readonly hot: number;
  readonly hotShare: number;
  readonly retryShare: number;
}

export const SHAPE: WorkloadShape = { wallets: 10_000, hot: 100, hotShare: 0.5, retryShare: 0.1 };
export const SEED_BALANCE = 1_000;

export const userIdOf = (index: number): string => `u${index}`;

/** mulberry32: a tiny seeded PRNG, so every run replays the same workload. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = state;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export function planWorkload(count: number, label: string, seed: number, shape: WorkloadShape = SHAPE): PlannedRequest[] {
  const next = random(seed);
  const pickUser = () => (next() < shape.hotShare ? Math.floor(next() * shape.hot) : shape.hot + Math.floor(next() * (shape.wallets - shape.hot)));
  const amount = (max: number) => 1 + Math.floor(next() * max);
  return Array.from({ length: count }, (_, i): PlannedRequest => {
    const roll = next();
    const key = `${label}-${i}`;
    const retry = next() < shape.retryShare;
    if (roll < 0.6) return { kind: 'earn', key, retry, body: { userId: userIdOf(pickUser()), amount: amount(100), orderId: key } };
    if (roll < 0.9) return { kind: 'use', key, retry, body: { userId: userIdOf(pickUser()), amount: amount(50), orderId: key } };
    const from = pickUser();
    let to = pickUser();
    if (to === from) to = (from + 1) % shape.wallets;
    return { kind: 'transfer', key, retry, body: { fromUserId: userIdOf(from), toUserId: userIdOf(to), amount: amount(50) } };
  });
}
