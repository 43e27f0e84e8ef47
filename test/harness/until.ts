// Waits for a condition with a deadline (the tests' one way to synchronise with another process or
// transaction; never a bare sleep). Polls every `intervalMs`; throws naming what it waited for.
export async function until(
  condition: () => boolean | Promise<boolean>, options: { timeoutMs?: number; what?: string; intervalMs?: number } = {},
): Promise<void> {
  const { timeoutMs = 30_000, what = 'condition', intervalMs = 20 } = options;
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
