// Revocation racing look-ups in distributed mode (real PostgreSQL and Redis, two app instances).
// The race that resurrected keys: a look-up misses Redis, reads PostgreSQL before the revocation
// commits, and writes its cache entry after the revocation's tombstone. The test makes that order
// happen for every key instead of hoping for it: the look-ups' Redis connection is held by a
// BLPOP (as a slow link would hold it) while they read PostgreSQL and the revocations answer,
// then released. Afterwards no look-up, on either instance, may accept a revoked key.
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminHeaders, createPartner, createTestApp, type TestApp } from '../../test/harness/test-app.ts';
import { waitFor } from '../../test/harness/wait-for.ts';

const KEYS = 1_000;
const CLIENT = '127.0.0.1';

async function issueKeys(t: TestApp, partnerId: string, count: number) {
  const keys: Array<{ id: string; apiKey: string }> = [];
  for (let i = 0; i < count; i += 50) {
    const batch = await Promise.all(Array.from({ length: Math.min(50, count - i) }, () =>
      t.app.inject({ method: 'POST', url: `/v1/partners/${partnerId}/api-keys`, headers: adminHeaders })));
    for (const response of batch) keys.push(response.json<{ id: string; apiKey: string }>());
  }
  return keys;
}

/** Counts this instance's finished api_keys queries on its auth pool (observes the real pool; changes nothing). */
function countKeyQueries(t: TestApp): () => number {
  let finished = 0;
  const original = t.ctx.authDb.query.bind(t.ctx.authDb) as (...args: unknown[]) => Promise<unknown>;
  (t.ctx.authDb as unknown as { query: unknown }).query = (...args: unknown[]) => {
    const sql = typeof args[0] === 'string' ? args[0] : (args[0] as { text?: string }).text ?? '';
    const result = original(...args);
    if (sql.includes('FROM api_keys k')) void result.then(() => { finished += 1; }, () => undefined);
    return result;
  };
  return () => finished;
}

/**
 * Holds `holder`'s Redis connection with a BLPOP until `release()`, which `releaser` sends. No
 * BLPOP timeout: on a loaded machine a hold that lapsed before the revocations answered would let
 * the look-ups cache first, and the test would fail for the machine's speed, not the code's.
 */
function holdRedis(holder: TestApp, releaser: TestApp) {
  const key = `stampede:test:hold:${randomUUID()}`;
  const held = holder.ctx.redis!.blPop(key, 0);
  let released: Promise<unknown> | undefined;
  return { release: () => (released ??= releaser.ctx.redis!.lPush(key, 'go').then(() => held)) };
}

async function revoke(t: TestApp, keys: Array<{ id: string }>): Promise<number> {
  const answers = await Promise.all(keys.map((key) => t.app.inject({ method: 'DELETE', url: `/v1/api-keys/${key.id}`, headers: adminHeaders })));
  expect(answers.map((answer) => answer.statusCode)).toEqual(keys.map(() => 204));
  return performance.now();
}

describe('API key revocation racing look-ups (distributed)', () => {
  let a: TestApp;
  let b: TestApp;
  let bQueries: () => number;
  beforeAll(async () => {
    a = await createTestApp({ distributed: true, env: { STAMPEDE_API_KEY_CACHE_MS: '0' } });
    // b keeps a local cache, to show a look-up that overlapped a revocation in b is not cached.
    b = await createTestApp({ distributed: true, env: { STAMPEDE_API_KEY_CACHE_MS: '60000' } });
    bQueries = countKeyQueries(b);
  });
  afterAll(async () => {
    await a.close();
    await b.close();
  });

  const stillAccepted = async (instance: TestApp, keys: Array<{ id: string; apiKey: string }>) => {
    const answers = await Promise.all(keys.map((key) => instance.ctx.keys.authenticate(key.apiKey, CLIENT)));
    return keys.filter((_key, i) => answers[i] !== null).map((key) => key.id);
  };

  it(`${KEYS} revocations on one instance racing ${KEYS} look-ups on another: no revoked key comes back`, async () => {
    const partner = await createPartner(a.app);
    const keys = await issueKeys(a, partner.id, KEYS);

    const queriesBefore = bQueries();
    // Every look-up sends its GET now; the BLPOP behind them holds b's connection, so each
    // look-up's cache write waits while it reads PostgreSQL and the revocations answer.
    const lookups = keys.map((key) => b.ctx.keys.authenticate(key.apiKey, CLIENT));
    const hold = holdRedis(b, a);
    let revokedAt: number;
    try {
      await waitFor(() => bQueries() - queriesBefore >= KEYS, { what: 'the look-ups to read PostgreSQL', timeoutMs: 60_000 });
      revokedAt = await revoke(a, keys);
    } finally {
      await hold.release();
    }
    const answered = await Promise.all(lookups);
    expect(performance.now()).toBeGreaterThan(revokedAt);

    const accepted = [...await stillAccepted(a, keys), ...await stillAccepted(b, keys)];
    console.log(`revocation race (two instances): ${KEYS} keys, ${answered.filter(Boolean).length} look-ups begun before the ` +
      `revocations accepted, ${accepted.length} look-ups after them accepted a revoked key`);
    expect(accepted).toEqual([]);
  }, 120_000);

  it(`${KEYS} revocations racing ${KEYS} look-ups in the same instance: the local cache does not keep the key either`, async () => {
    const partner = await createPartner(b.app);
    const keys = await issueKeys(b, partner.id, KEYS);

    const queriesBefore = bQueries();
    const lookups = keys.map((key) => b.ctx.keys.authenticate(key.apiKey, CLIENT));
    const hold = holdRedis(b, a);
    let revoked: Promise<number>;
    try {
      await waitFor(() => bQueries() - queriesBefore >= KEYS, { what: 'the look-ups to read PostgreSQL', timeoutMs: 60_000 });
      // b's tombstone writes queue behind the look-ups' cache writes; b's revocations answer once
      // the hold is released, and only then is "after the revocation" checked.
      revoked = revoke(b, keys);
    } finally {
      await hold.release();
    }
    await Promise.all([revoked, ...lookups]);

    const accepted = [...await stillAccepted(b, keys), ...await stillAccepted(a, keys)];
    console.log(`revocation race (one instance, local cache on): ${KEYS} keys, ${accepted.length} look-ups after the revocations accepted a revoked key`);
    expect(accepted).toEqual([]);
  }, 120_000);
});
