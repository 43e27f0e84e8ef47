// Which waiting calls share the next batch of the group commit (group-commit.ts): a pure function
// of the queue, what batches in flight hold, and the time, so the scheduling is unit-tested alone.

/** A call waiting for a batch, as far as scheduling sees it. */
export interface WaitingCall {
  /** Its idempotency key (partner-scoped): no two calls of a batch, or of batches in flight, share one. */
  readonly key: string;
  /** Its wallets; none for a call that runs alone (a cancel: its wallet is not known up front). */
  readonly wallets: readonly string[];
  /** The key and the wallets: what a batch holding the call makes busy. */
  readonly holds: readonly string[];
  readonly alone: boolean;
  /** An earn or a use: may share its wallet with other earns and uses of its batch. */
  readonly shares: boolean;
  /** When it was queued (performance.now()). */
  readonly since: number;
}

/**
 * The indexes (ascending) of the oldest calls that fit together: keys and wallets no batch in
 * flight holds (`busy`), distinct keys, a wallet shared only by earns and uses; or one call that
 * runs alone. A call that cannot share and was queued at or before `patience` has what it waits
 * for reserved: no later call takes it. (A transfer between two hot wallets otherwise waits until
 * both are free at once, which under load they may never be; reserving at once instead queues each
 * hot wallet behind every transfer on it: docs/decisions/131-points-group-commit.md.)
 */
export function pickBatch(queue: readonly WaitingCall[], busy: ReadonlySet<string>, maxBatch: number, patience: number): number[] {
  const picked: number[] = [];
  const keys = new Set<string>();
  const wallets = new Map<string, boolean>(); // the batch's wallets → whether only earns and uses hold them
  const reserved = new Set<string>(); // keys and wallets of older calls that waited too long
  const free = (hold: string) => !busy.has(hold) && !reserved.has(hold);
  const joinable = (wallet: string, shares: boolean) => free(wallet) && (wallets.get(wallet) ?? true) && (shares || !wallets.has(wallet));
  for (let i = 0; i < queue.length && picked.length < maxBatch; i++) {
    const call = queue[i]!;
    const fits = call.alone
      ? picked.length === 0 && free(call.key)
      : free(call.key) && !keys.has(call.key) && call.wallets.every((wallet) => joinable(wallet, call.shares));
    if (!fits) {
      if (!call.shares && call.since <= patience) for (const hold of call.holds) reserved.add(hold);
      continue;
    }
    picked.push(i);
    if (call.alone) break;
    keys.add(call.key);
    for (const wallet of call.wallets) wallets.set(wallet, call.shares && (wallets.get(wallet) ?? true));
  }
  return picked;
}
