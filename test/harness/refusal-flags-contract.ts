// Fast refusals (decision 185) as a contract every Redis topology must meet, with two API
// processes (two apps, each with its own gate, subscription and template cache) on one Redis: run
// against a private single Redis by src/claims/refusal-flags.test.ts, against a 3-master Redis
// Cluster by redis-claim-path-cluster.test.ts and against a primary and replica behind three
// Sentinels by redis-claim-path-sentinel.test.ts. "Without asking Redis" is measured on Redis
// itself: the runs of claim-5.lua that every data node reports through MONITOR, which is why the
// Redis under test must be private to the file (CLIENT KILL TYPE pubsub would also hit others).
import { randomUUID } from 'node:crypto';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimOnce, drainClaims, stampede } from './claims.ts';
import { createTemplate } from './issue-coupons.ts';
import { redisCommand } from './redis-nodes.ts';
import { createPartner, createTestApp, type TestApp } from './test-app.ts';
import { waitFor } from './wait-for.ts';
import { ClaimRefusal } from '../../src/claims/claim-gate.ts';
import type { FastRefusalGate } from '../../src/claims/fast-refusal-gate.ts';
import { changeTemplate } from '../../src/claims/claim-settings.ts';
import { reconcileTemplate } from '../../src/claims/reconcile.ts';
import { loadLuaScript } from '../../src/infra/lua.ts';

const CLAIM_SCRIPT = loadLuaScript(new URL('../../src/claims/claim-5.lua', import.meta.url));

/**
 * Counts the runs of claim-5.lua on every data node (EVALSHA by its digest, or EVAL of its source).
 * runs() first waits until each node's MONITOR stream has shown an ECHO sent after everything
 * before it, so no earlier run is still on its way.
 */
async function watchClaimScript(urls: readonly string[]) {
  let runs = 0;
  const fences = new Map<string, number>();
  const firstLine = CLAIM_SCRIPT.source.split('\n')[0]!.slice(3, 40);
  const monitors = await Promise.all(urls.map(async (url) => {
    const monitor = createClient({ url });
    monitor.on('error', () => undefined);
    await monitor.connect();
    await monitor.monitor((line) => {
      if (line.includes(CLAIM_SCRIPT.sha) || line.includes(firstLine)) runs += 1;
      const fence = /"ECHO" "(fence-[^"]+)"/i.exec(line)?.[1];
      if (fence) fences.set(fence, (fences.get(fence) ?? 0) + 1);
    });
    return monitor;
  }));
  return {
    async runs(): Promise<number> {
      const fence = `fence-${randomUUID()}`;
      await Promise.all(urls.map((url) => redisCommand(url, ['ECHO', fence])));
      await waitFor(() => fences.get(fence) === urls.length, { what: 'every MONITOR to catch up', timeoutMs: 10_000, intervalMs: 2 });
      return runs;
    },
    close: () => { for (const monitor of monitors) monitor.destroy(); },
  };
}

export interface PrivateRedis {
  /** REDIS_URL and STAMPEDE_REDIS_MODE of the topology. */
  readonly url: string;
  readonly mode: 'single' | 'cluster' | 'sentinel';
  readonly env?: Record<string, string>;
  /** Every data node (where scripts run and subscribers connect). */
  readonly dataNodeUrls: readonly string[];
  /**
   * Whether the un-flag is written to every subscriber before the change is acknowledged (one
   * Redis, Sentinel); in a cluster it crosses the cluster bus, so it is awaited with a deadline.
   */
  readonly unflagBeforeAcknowledgement: boolean;
  stop(): Promise<void>;
}

export function describeFastRefusals(name: string, startRedis: () => Promise<PrivateRedis>): void {
describe(`fast refusals across API processes (${name})`, () => {
  let redis: PrivateRedis;
  let a: TestApp;
  let b: TestApp;
  let claimScript: Awaited<ReturnType<typeof watchClaimScript>>;
  beforeAll(async () => {
    redis = await startRedis();
    // Flags trusted for a minute: on a loaded machine a 1 s TTL could expire mid-test and hide a
    // missing un-flag (the TTL has its own unit test).
    const env = { STAMPEDE_REDIS_MODE: redis.mode, STAMPEDE_CLAIM_REFUSAL_FLAG_TTL_MS: '60000', ...redis.env };
    const options = { distributed: true, redisUrl: redis.url, env };
    [a, b] = await Promise.all([createTestApp(options), createTestApp(options)]);
    claimScript = await watchClaimScript(redis.dataNodeUrls);
  });
  afterAll(async () => {
    claimScript?.close();
    await Promise.all([a?.close(), b?.close()]);
    await redis?.stop();
  });

  const flagsOf = (app: TestApp) => (app.ctx.claimGate as FastRefusalGate).flags;
  /** claim-5.lua runs so far, over every data node. */
  const scriptCalls = () => claimScript.runs();
  /** The template as the app's claim route holds it (its own cache). */
  const cached = async (app: TestApp, id: string) => (await app.ctx.claimTemplates.get(id))!;
  /** Opens the event through each app (which starts their subscriptions) and waits until both are subscribed. */
  async function opened(totalQuantity: number, perUserLimit = 1) {
    const partner = await createPartner(a.app);
    const id = await createTemplate(a.app, partner.headers, { totalQuantity, perUserLimit });
    expect((await claimOnce(a.app, partner.headers, id, 'opener-a')).status).toBe(201);
    expect((await claimOnce(b.app, partner.headers, id, 'opener-b')).status).toBe(201);
    await waitFor(() => flagsOf(a).isSubscribed && flagsOf(b).isSubscribed, { what: 'both subscriptions to be confirmed', timeoutMs: 10_000 });
    const patch = async (payload: Record<string, unknown>) => {
      const response = await a.app.inject({ method: 'PATCH', url: `/v1/coupon-templates/${id}`, headers: partner.headers, payload });
      expect(response.statusCode, response.body).toBe(200);
    };
    return { partner, id, patch };
  }
  /**
   * After a change acknowledged through A: both obey it at their next claim (cluster: within a
   * deadline, for A too: its subscriber may sit on another node than the one that published).
   */
  async function unflagged(id: string, userId: string) {
    if (redis.unflagBeforeAcknowledgement) return;
    for (const [app, label] of [[a, 'A'], [b, 'B']] as const) {
      const template = await cached(app, id);
      await waitFor(() => flagsOf(app).refusalFor(template, userId) === undefined, { what: `the un-flag to reach ${label}`, timeoutMs: 500, intervalMs: 1 });
    }
  }

  it('sold out through A: B refuses without a Redis call, within milliseconds of the last coupon', async () => {
    const { partner, id } = await opened(4);
    expect((await claimOnce(a.app, partner.headers, id, 'a-1')).status).toBe(201);
    const last = await claimOnce(a.app, partner.headers, id, 'a-2');
    const lastAt = performance.now();
    expect(last.status).toBe(201);
    const template = await cached(b, id);
    await waitFor(() => flagsOf(b).refusalFor(template, 'b-1') === ClaimRefusal.SoldOut, { what: 'B to know the event sold out', timeoutMs: 500, intervalMs: 1 });
    const propagationMs = performance.now() - lastAt;
    const before = await scriptCalls();
    const answers = await Promise.all(['b-1', 'b-2', 'b-3', 'opener-b'].map((user) => claimOnce(b.app, partner.headers, id, user)));
    expect(answers.map((answer) => answer.code)).toEqual(['SOLD_OUT', 'SOLD_OUT', 'SOLD_OUT', 'SOLD_OUT']);
    expect(await scriptCalls()).toBe(before);
    expect((await b.ctx.metrics.registry.getSingleMetric('stampede_claim_shortcut_refusals_total')!.get()).values)
      .toContainEqual(expect.objectContaining({ labels: { template: id, outcome: 'sold_out' }, value: 4 }));
    // A shortcut refusal makes no coupon id (ids are made only for claims the gate may issue).
    let made = 0;
    expect(await b.ctx.claimGate.claim(template, () => { made += 1; return 'not-used'; }, 'b-4')).toEqual({ refusal: ClaimRefusal.SoldOut });
    expect(made).toBe(0);
    console.info(`sold out → B flagged: ${propagationMs.toFixed(1)} ms (${name})`);
  });

  it('pause then resume through PATCH: B refuses while paused without a Redis call; after the resume both accept at the next claim', async () => {
    const { partner, id, patch } = await opened(100);
    await patch({ paused: true });
    const template = await cached(b, id);
    await waitFor(() => flagsOf(b).refusalFor(template, 'u-1') === ClaimRefusal.Paused, { what: 'B to know the event paused', timeoutMs: 500, intervalMs: 1 });
    const before = await scriptCalls();
    expect(await claimOnce(b.app, partner.headers, id, 'u-1')).toMatchObject({ status: 409, code: 'CLAIM_PAUSED' });
    expect(await scriptCalls()).toBe(before);

    await patch({ paused: false });
    await unflagged(id, 'u-1');
    expect((await claimOnce(b.app, partner.headers, id, 'u-1')).status).toBe(201);
    expect((await claimOnce(a.app, partner.headers, id, 'u-2')).status).toBe(201);
  });

  it('when the change that resumes an event resolves (what PATCH answers after), B has already dropped its flag', async (context) => {
    // In a cluster the un-flag crosses the cluster bus, unordered with the change's reply.
    if (!redis.unflagBeforeAcknowledgement) context.skip();
    const { partner, id, patch } = await opened(100);
    await patch({ paused: true });
    const template = await cached(b, id);
    await waitFor(() => flagsOf(b).refusalFor(template, 'u-1') === ClaimRefusal.Paused, { what: 'B to know the event paused', timeoutMs: 500, intervalMs: 1 });
    const { rows: [key] } = await a.ctx.db.query<{ id: string }>('SELECT id FROM api_keys WHERE partner_id = $1', [partner.id]);
    await changeTemplate(a.ctx, { partnerId: partner.id, keyId: key!.id }, id, { paused: false });
    // No I/O between the change resolving and this check: B read the un-flag before the change's last reply.
    expect(flagsOf(b).refusalFor(template, 'u-1')).toBeUndefined();
  });

  it('stock raised after a sell-out: B accepts at its next claim', async () => {
    const { partner, id, patch } = await opened(3);
    expect((await claimOnce(a.app, partner.headers, id, 'a-1')).status).toBe(201);
    const template = await cached(b, id);
    await waitFor(() => flagsOf(b).refusalFor(template, 'u-1') === ClaimRefusal.SoldOut, { what: 'B to know the event sold out', timeoutMs: 500, intervalMs: 1 });
    await patch({ totalQuantity: 4 });
    await unflagged(id, 'u-1');
    expect((await claimOnce(b.app, partner.headers, id, 'u-1')).status).toBe(201);
  });

  it('a user B saw at the limit is refused without a Redis call until perUserLimit is raised', async () => {
    const { partner, id, patch } = await opened(100, 1);
    expect((await claimOnce(b.app, partner.headers, id, 'alice')).status).toBe(201);
    expect(await claimOnce(b.app, partner.headers, id, 'alice')).toMatchObject({ status: 409, code: 'CLAIM_LIMIT_REACHED' });
    const before = await scriptCalls();
    expect(await claimOnce(b.app, partner.headers, id, 'alice')).toMatchObject({ status: 409, code: 'CLAIM_LIMIT_REACHED' });
    expect(await scriptCalls()).toBe(before);

    const template = await cached(b, id);
    expect(flagsOf(b).refusalFor(template, 'alice')).toBe(ClaimRefusal.LimitReached);
    await patch({ perUserLimit: 2 });
    await unflagged(id, 'alice');
    // B's cached template still has the old settings version: only the change's message drops the record.
    expect(flagsOf(b).refusalFor(template, 'alice')).toBeUndefined();
    expect((await claimOnce(b.app, partner.headers, id, 'alice')).status).toBe(201);
    expect(await claimOnce(b.app, partner.headers, id, 'alice')).toMatchObject({ status: 409, code: 'CLAIM_LIMIT_REACHED' });
  });

  it('subscriber connections killed: B forgets its flags and asks the gate until subscribed again; the event stays exact', async () => {
    const { partner, id, patch } = await opened(40);
    await patch({ paused: true });
    const template = await cached(b, id);
    await waitFor(() => flagsOf(b).refusalFor(template, 'u-1') === ClaimRefusal.Paused, { what: 'B to know the event paused', timeoutMs: 500, intervalMs: 1 });

    const interruptions = async () => (await b.ctx.metrics.registry.getSingleMetric('stampede_claim_refusal_flags_interruptions_total')!.get()).values[0]?.value ?? 0;
    const before = await interruptions();
    for (const url of redis.dataNodeUrls) await redisCommand(url, ['CLIENT', 'KILL', 'TYPE', 'pubsub']);
    await waitFor(async () => (await interruptions()) > before, { what: 'B to notice the lost subscription', timeoutMs: 5_000, intervalMs: 1 });
    expect(flagsOf(b).refusalFor(template, 'u-1')).toBeUndefined();
    // The resume may be published before B subscribed again (it never hears of it): B must not refuse.
    await patch({ paused: false });
    expect((await claimOnce(b.app, partner.headers, id, 'u-1')).status).toBe(201);

    // A stampede through both while the subscriptions are killed again and again.
    let killing = true;
    const killer = (async () => {
      while (killing) {
        for (const url of redis.dataNodeUrls) await redisCommand(url, ['CLIENT', 'KILL', 'TYPE', 'pubsub']).catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    let answers;
    try {
      answers = (await Promise.all([
        stampede(a.app, partner.headers, id, 30, 2, 'a'), stampede(b.app, partner.headers, id, 30, 2, 'b'),
      ])).flat();
    } finally {
      killing = false;
      await killer;
    }
    expect(answers.filter((answer) => answer.status === 201)).toHaveLength(40 - 3);
    expect(answers.every((answer) => answer.status === 201 || ['SOLD_OUT', 'CLAIM_LIMIT_REACHED'].includes(answer.code!))).toBe(true);

    await waitFor(() => flagsOf(b).isSubscribed, { what: 'B to be subscribed again', timeoutMs: 10_000 });
    // Subscribed again, B learns from its next refusal and shortcuts the one after (its cached
    // template read afresh first: a refresh to the newer settings version in between would
    // rightly make it ask again).
    b.ctx.claimTemplates.forget(id);
    expect(await claimOnce(b.app, partner.headers, id, 'late-1')).toMatchObject({ code: 'SOLD_OUT' });
    const runs = await scriptCalls();
    expect(await claimOnce(b.app, partner.headers, id, 'late-2')).toMatchObject({ code: 'SOLD_OUT' });
    expect(await scriptCalls()).toBe(runs);

    await drainClaims(a.ctx, id);
    expect(await reconcileTemplate(a.ctx, id)).toMatchObject({ drift: 0, problems: [], postgres: { issuedCount: 40, rows: 40 } });
  }, 180_000);

  it('a claim with an Idempotency-Key always asks the gate: its first outcome is answered again, even sold out', async () => {
    const { partner, id } = await opened(3);
    const keyed = (user: string) => b.app.inject({ method: 'POST', url: `/v1/coupon-templates/${id}/claims`, headers: { ...partner.headers, 'idempotency-key': `key-${user}` }, payload: { userId: user } });
    const first = await keyed('k-1');
    expect(first.statusCode).toBe(201);
    const template = await cached(b, id);
    await waitFor(() => flagsOf(b).refusalFor(template, 'x') === ClaimRefusal.SoldOut, { what: 'B to know the event sold out', timeoutMs: 500, intervalMs: 1 });
    const again = await keyed('k-1');
    expect(again.statusCode).toBe(201);
    expect(again.json().couponId).toBe(first.json().couponId);
  });
});
}
