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
 * Flags trusted for a minute (the most the setting allows): on a loaded machine a 1 s TTL could
 * expire mid-test and hide a missing un-flag (the TTL has its own unit test).
 */
const FLAG_TTL_MS = 60_000;
/**
 * How long a flag or an un-flag may take to reach a process: a deadline for failure, not a speed
 * claim (the propagation time is printed; decision 185 keeps the figures). With 500 ms a process
 * starved of CPU at load average 30-45 could miss it; a message never sent still fails the wait.
 */
const PROPAGATION_DEADLINE_MS = 10_000;
/** For a subscription, a reconnection or MONITOR to catch up: deadlines too. */
const SETTLE_DEADLINE_MS = 30_000;

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
      await waitFor(() => fences.get(fence) === urls.length, { what: 'every MONITOR to catch up', timeoutMs: SETTLE_DEADLINE_MS, intervalMs: 2 });
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
  stop(): Promise<void>;
}

/** What the topology promises, known when the tests are declared. */
export interface TopologyPromises {
  /**
   * Whether the un-flag is written to every subscriber before the change is acknowledged (one
   * Redis, Sentinel); in a cluster it crosses the cluster bus, so it is awaited with a deadline.
   */
  readonly unflagBeforeAcknowledgement: boolean;
}

export function describeFastRefusals(name: string, promises: TopologyPromises, startRedis: () => Promise<PrivateRedis>): void {
describe(`fast refusals across API processes (${name})`, () => {
  let redis: PrivateRedis;
  let a: TestApp;
  let b: TestApp;
  let claimScript: Awaited<ReturnType<typeof watchClaimScript>>;
  beforeAll(async () => {
    redis = await startRedis();
    const env = { STAMPEDE_REDIS_MODE: redis.mode, STAMPEDE_CLAIM_REFUSAL_FLAG_TTL_MS: String(FLAG_TTL_MS), ...redis.env };
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
  let eventOpenedAt = 0;
  /** Opens the event through each app (which starts their subscriptions) and waits until both are subscribed. */
  async function opened(totalQuantity: number, perUserLimit = 1) {
    const partner = await createPartner(a.app);
    const id = await createTemplate(a.app, partner.headers, { totalQuantity, perUserLimit });
    expect((await claimOnce(a.app, partner.headers, id, 'opener-a')).status).toBe(201);
    expect((await claimOnce(b.app, partner.headers, id, 'opener-b')).status).toBe(201);
    await waitFor(() => flagsOf(a).isSubscribed && flagsOf(b).isSubscribed, { what: 'both subscriptions to be confirmed', timeoutMs: SETTLE_DEADLINE_MS });
    // No flag of the event exists yet (nothing refused, nothing changed), so none expires by its TTL before this plus FLAG_TTL_MS.
    eventOpenedAt = performance.now();
    const patch = async (payload: Record<string, unknown>) => {
      const response = await a.app.inject({ method: 'PATCH', url: `/v1/coupon-templates/${id}`, headers: partner.headers, payload });
      expect(response.statusCode, response.body).toBe(200);
    };
    return { partner, id, patch };
  }
  /** A wait for an un-flag must end before any flag of the test could expire, or an expiry would pass for it. */
  function expectBeforeAnyExpiry() {
    const untilAnyExpiry = eventOpenedAt + FLAG_TTL_MS - performance.now();
    if (untilAnyExpiry < PROPAGATION_DEADLINE_MS + 1_000) {
      throw new Error(`too slow to tell an un-flag from an expired flag: ${Math.round(untilAnyExpiry)} ms before the TTL`);
    }
  }
  /**
   * After a change acknowledged through A: both obey it at their next claim (cluster: within a
   * deadline, for A too: its subscriber may sit on another node than the one that published).
   */
  async function unflagged(id: string, userId: string) {
    if (promises.unflagBeforeAcknowledgement) return;
    for (const [app, label] of [[a, 'A'], [b, 'B']] as const) {
      const template = await cached(app, id);
      expectBeforeAnyExpiry();
      await waitFor(() => flagsOf(app).refusalFor(template, userId) === undefined, { what: `the un-flag to reach ${label}`, timeoutMs: PROPAGATION_DEADLINE_MS, intervalMs: 1 });
    }
  }

  /**
   * A claim through `app` right after a change acknowledged through A. A change is applied twice,
   * first with the stricter of the old and new settings (a resume: still paused, at the new
   * version), so in a cluster a process subscribed again just in time holds a fresh flag whose
   * un-flag may still be on the cluster bus when the PATCH answers: the claim is retried while
   * it answers CLAIM_PAUSED, within the propagation deadline (the TTL cannot be what admits it).
   */
  async function nextClaimAfterChange(app: TestApp, headers: Record<string, string>, id: string, userId: string) {
    if (promises.unflagBeforeAcknowledgement) return claimOnce(app.app, headers, id, userId);
    expectBeforeAnyExpiry();
    return waitFor(async () => {
      const answer = await claimOnce(app.app, headers, id, userId);
      return answer.code === 'CLAIM_PAUSED' ? undefined : answer;
    }, { what: `a claim through ${app === a ? 'A' : 'B'} that the resume admits`, timeoutMs: PROPAGATION_DEADLINE_MS, intervalMs: 1 });
  }

  it('sold out through A: B refuses without a Redis call once the sell-out reaches it (time from the last coupon printed)', async () => {
    const { partner, id } = await opened(4);
    expect((await claimOnce(a.app, partner.headers, id, 'a-1')).status).toBe(201);
    const last = await claimOnce(a.app, partner.headers, id, 'a-2');
    const lastAt = performance.now();
    expect(last.status).toBe(201);
    const template = await cached(b, id);
    await waitFor(() => flagsOf(b).refusalFor(template, 'b-1') === ClaimRefusal.SoldOut, { what: 'B to know the event sold out', timeoutMs: PROPAGATION_DEADLINE_MS, intervalMs: 1 });
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
    await waitFor(() => flagsOf(b).refusalFor(template, 'u-1') === ClaimRefusal.Paused, { what: 'B to know the event paused', timeoutMs: PROPAGATION_DEADLINE_MS, intervalMs: 1 });
    const before = await scriptCalls();
    expect(await claimOnce(b.app, partner.headers, id, 'u-1')).toMatchObject({ status: 409, code: 'CLAIM_PAUSED' });
    expect(await scriptCalls()).toBe(before);

    await patch({ paused: false });
    await unflagged(id, 'u-1');
    expect((await claimOnce(b.app, partner.headers, id, 'u-1')).status).toBe(201);
    expect((await claimOnce(a.app, partner.headers, id, 'u-2')).status).toBe(201);
  });

  // Declared only where the topology promises it: in a cluster the un-flag crosses the cluster bus, unordered with the change's reply.
  if (promises.unflagBeforeAcknowledgement) {
    it('when the change that resumes an event resolves (what PATCH answers after), B has already dropped its flag', async () => {
      const { partner, id, patch } = await opened(100);
      await patch({ paused: true });
      const template = await cached(b, id);
      await waitFor(() => flagsOf(b).refusalFor(template, 'u-1') === ClaimRefusal.Paused, { what: 'B to know the event paused', timeoutMs: PROPAGATION_DEADLINE_MS, intervalMs: 1 });
      const { rows: [key] } = await a.ctx.db.query<{ id: string }>('SELECT id FROM api_keys WHERE partner_id = $1', [partner.id]);
      await changeTemplate(a.ctx, { partnerId: partner.id, keyId: key!.id }, id, { paused: false });
      // No I/O between the change resolving and this check: B read the un-flag before the change's last reply.
      expect(flagsOf(b).refusalFor(template, 'u-1')).toBeUndefined();
    });
  }

  it('stock raised after a sell-out: B accepts at its next claim', async () => {
    const { partner, id, patch } = await opened(3);
    expect((await claimOnce(a.app, partner.headers, id, 'a-1')).status).toBe(201);
    const template = await cached(b, id);
    await waitFor(() => flagsOf(b).refusalFor(template, 'u-1') === ClaimRefusal.SoldOut, { what: 'B to know the event sold out', timeoutMs: PROPAGATION_DEADLINE_MS, intervalMs: 1 });
    await patch({ totalQuantity: 4 });
    await unflagged(id, 'u-1');
    expect((await claimOnce(b.app, partner.headers, id, 'u-1')).status).toBe(201);
  });

  it('a user B saw reach the limit is refused without a Redis call until perUserLimit is raised', async () => {
    const { partner, id, patch } = await opened(100, 1);
    expect((await claimOnce(b.app, partner.headers, id, 'alice')).status).toBe(201);
    // The 201 that reached the limit is enough: B asks Redis for none of alice's later claims.
    const before = await scriptCalls();
    expect(await claimOnce(b.app, partner.headers, id, 'alice')).toMatchObject({ status: 409, code: 'CLAIM_LIMIT_REACHED' });
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

  it('a user A saw reach the limit is refused by B without a Redis call once A announced it (time from the 201 printed)', async () => {
    const { partner, id } = await opened(100, 1);
    expect((await claimOnce(a.app, partner.headers, id, 'carol')).status).toBe(201);
    const issuedAt = performance.now();
    const template = await cached(b, id);
    await waitFor(() => flagsOf(b).refusalFor(template, 'carol') === ClaimRefusal.LimitReached, { what: 'B to know carol reached the limit', timeoutMs: PROPAGATION_DEADLINE_MS, intervalMs: 1 });
    const propagationMs = performance.now() - issuedAt;
    const before = await scriptCalls();
    expect(await claimOnce(b.app, partner.headers, id, 'carol')).toMatchObject({ status: 409, code: 'CLAIM_LIMIT_REACHED' });
    expect(await scriptCalls()).toBe(before);
    // Another user is still B's gate's to decide.
    expect((await claimOnce(b.app, partner.headers, id, 'dan')).status).toBe(201);
    console.info(`limit reached through A → B knows: ${propagationMs.toFixed(1)} ms (${name})`);
  });

  it('subscriber connections killed: B forgets its flags and asks the gate until subscribed again; the event stays exact', async () => {
    const { partner, id, patch } = await opened(40);
    await patch({ paused: true });
    const template = await cached(b, id);
    await waitFor(() => flagsOf(b).refusalFor(template, 'u-1') === ClaimRefusal.Paused, { what: 'B to know the event paused', timeoutMs: PROPAGATION_DEADLINE_MS, intervalMs: 1 });

    const interruptions = async () => (await b.ctx.metrics.registry.getSingleMetric('stampede_claim_refusal_flags_interruptions_total')!.get()).values[0]?.value ?? 0;
    const before = await interruptions();
    for (const url of redis.dataNodeUrls) await redisCommand(url, ['CLIENT', 'KILL', 'TYPE', 'pubsub']);
    await waitFor(async () => (await interruptions()) > before, { what: 'B to notice the lost subscription', timeoutMs: SETTLE_DEADLINE_MS, intervalMs: 1 });
    expect(flagsOf(b).refusalFor(template, 'u-1')).toBeUndefined();
    // The resume may be published before B subscribed again (it never hears of it): B must not refuse.
    await patch({ paused: false });
    expect((await nextClaimAfterChange(b, partner.headers, id, 'u-1')).status).toBe(201);

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
    expect(answers.filter((answer) => !(answer.status === 201 || ['SOLD_OUT', 'CLAIM_LIMIT_REACHED'].includes(answer.code!)))).toEqual([]);

    await waitFor(() => flagsOf(b).isSubscribed, { what: 'B to be subscribed again', timeoutMs: SETTLE_DEADLINE_MS });
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
    await waitFor(() => flagsOf(b).refusalFor(template, 'x') === ClaimRefusal.SoldOut, { what: 'B to know the event sold out', timeoutMs: PROPAGATION_DEADLINE_MS, intervalMs: 1 });
    const again = await keyed('k-1');
    expect(again.statusCode).toBe(201);
    expect(again.json().couponId).toBe(first.json().couponId);
  });
});
}
