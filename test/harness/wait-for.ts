// The one way tests wait: poll a condition until it holds or a deadline passes, then fail naming
// what was awaited and the last value seen. Never sleep a fixed time to let something happen: a
// loaded machine makes any fixed sleep too short, and an idle one makes it a waste.

export interface WaitForOptions {
  /** What is awaited, for the failure message ("the job to succeed"). */
  readonly what: string;
  /** Generous by default: the machine running the suite may be loaded. */
  readonly timeoutMs?: number;
  readonly intervalMs?: number;
  /**
   * An error thrown by `probe` is "not yet" (a server still starting, a node being promoted) and
   * the last one is named in the failure. Without it an error fails the wait at once.
   */
  readonly tolerateErrors?: boolean;
}

type Held<T> = Exclude<T, false | null | undefined>;

/**
 * Calls `probe` until it returns a value other than false/null/undefined and returns that value
 * (so `const job = await waitFor(async () => (await get()).state === 'DONE' && job, …)` works).
 * An error thrown by `probe` fails the wait at once (it is a failure, not "not yet") unless
 * `tolerateErrors` is set.
 */
export async function waitFor<T>(probe: () => T | Promise<T>, options: WaitForOptions): Promise<Held<T>> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let last: unknown;
    let threw = false;
    try {
      last = await probe();
    } catch (error) {
      if (!options.tolerateErrors) throw error;
      [last, threw] = [error, true];
    }
    if (!threw && last !== false && last !== null && last !== undefined) return last as Held<T>;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${options.what} (last: ${String(last)})`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 50));
  }
}

/**
 * `promise`, or a failure naming `what` if it has not settled within `timeoutMs`. For an answer
 * that must not wait on something held indefinitely (a lock, a 30 s sleep): pick a deadline far
 * from the boundary, so only the wrong behaviour can miss it.
 */
export async function withDeadline<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * True when no other session has a transaction open in this database. Every test file has a
 * database of its own (file-services.ts), so this says the file's own workers are between steps.
 */
export async function noOtherTransaction(db: { query(sql: string): Promise<{ rows: Array<{ n: number }> }> }): Promise<boolean> {
  const { rows } = await db.query(
    `SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL`);
  return rows[0]!.n === 0;
}
