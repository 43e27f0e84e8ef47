// The claim persister (distributed mode): moves claims from the templates' Redis streams into
// PostgreSQL. Every persister joins one consumer group per active template stream, so several
// share the load and each entry goes to one of them. Per stream it reads its own pending entries
// first (left by a failed batch), then new ones; a batch becomes one statement (multi-row INSERT
// … ON CONFLICT DO NOTHING + issued_count), then XACK + XDEL + the claim records' removal in one
// MULTI. Entries leave the stream only once acknowledged, so the stream length is the backlog.
// Entries another persister took and left idle past claimReclaimIdleMs (it died) are taken over
// with XAUTOCLAIM. A crash anywhere only causes redelivery, which the idempotent insert absorbs.
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { redisTargetOf } from '../config.ts';
import type { AppContext } from '../context.ts';
import type { CouponTemplate } from '../coupons/template-repository.ts';
import { createRedisClient, type Redis } from '../infra/redis.ts';
import { claimFromStreamEntry } from './claim-record.ts';
import { replicatedNow, replicationOf, type ReplicationOptions } from './claim-replication-fence.ts';
import { persistClaims } from './claim-writer.ts';
import { activeTemplateIds, deactivateTemplate, PERSISTER_GROUP, partnerActiveTemplatesKey, templateClaimKeys, type TemplateClaimKeys } from './redis-keys.ts';

const REFRESH_TEMPLATES_MS = 1_000;
const HOUSEKEEPING_MS = 1_000;
const MAX_IDLE_SLEEP_MS = 50;
const ERROR_BACKOFF_MS = 500;
/** A template leaves the active set this long after its window closed, once its stream is empty. */
const DEACTIVATE_AFTER_CLOSE_MS = 60_000;
/** A drained stream (and the state of an event opened before the gate set expiries) is kept this long, then expires. */
const FINISHED_STATE_TTL_SECONDS = 86_400;
/** Every restart joins as a new consumer; departed ones with nothing pending are forgotten after this. */
const FORGET_CONSUMER_IDLE_MS = 3_600_000;

/** XREADGROUP's reply as node-redis shapes it (RESP2); deleted pending entries have no fields. */
type StreamsReply = Array<{ name: string; messages: Array<{ id: string; message: Record<string, string> | null }> }> | null;

interface StreamState {
  readonly template: CouponTemplate;
  readonly keys: TemplateClaimKeys;
  /** Read this consumer's pending entries (from id 0) before new ones. */
  backlog: boolean;
}

/** The WorkerStarter of claim persistence; nothing to do without Redis (the embedded gate commits itself). */
export async function startClaimPersister(ctx: AppContext): Promise<() => Promise<void>> {
  if (!ctx.redis || ctx.config.redisUrl === undefined) return async () => undefined;
  // Its own connection: large stream reads must not queue ahead of claims on the shared one.
  const redis = createRedisClient(redisTargetOf(ctx.config), ctx.logger);
  await redis.connect();
  const persister = new ClaimPersister(ctx, redis, `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`);
  const running = persister.run();
  return async () => {
    await persister.stop(running);
    await redis.close();
  };
}

class ClaimPersister {
  private readonly streams = new Map<string, StreamState>();
  private stopping = false;
  private wake: (() => void) | undefined;
  private nextRefresh = 0;
  private nextHousekeeping = 0;
  private readonly replication: ReplicationOptions;

  constructor(
    private readonly ctx: AppContext,
    private readonly redis: Redis,
    private readonly consumer: string,
  ) {
    this.replication = replicationOf(ctx.config);
  }

  async run(): Promise<void> {
    let idleMs = 0;
    while (!this.stopping) {
      try {
        const now = Date.now();
        if (now >= this.nextRefresh) await this.refreshTemplates(now);
        let persisted = 0;
        for (const stream of this.streams.values()) persisted += await this.persistNextBatch(stream);
        if (now >= this.nextHousekeeping) await this.housekeeping(now);
        idleMs = persisted > 0 ? 0 : Math.min(MAX_IDLE_SLEEP_MS, Math.max(1, idleMs * 2));
      } catch (error) {
        this.ctx.logger.error({ err: error }, 'claim persister pass failed; retrying');
        for (const stream of this.streams.values()) stream.backlog = true;
        idleMs = ERROR_BACKOFF_MS;
      }
      if (idleMs > 0) await this.sleep(idleMs);
    }
  }

  /** Stops after the batch in progress is committed and acknowledged. */
  async stop(running: Promise<void>): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await running;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => { clearTimeout(timer); resolve(); };
    });
  }

  private async refreshTemplates(now: number): Promise<void> {
    this.nextRefresh = now + REFRESH_TEMPLATES_MS;
    const active = new Set(await activeTemplateIds(this.redis));
    for (const id of this.streams.keys()) if (!active.has(id)) this.streams.delete(id);
    for (const id of active) {
      if (this.streams.has(id)) continue;
      const template = await this.ctx.claimTemplates.get(id);
      if (!template) {
        await deactivateTemplate(this.redis, id);
        continue;
      }
      const keys = templateClaimKeys(id);
      try {
        // From id 0: entries written before the group existed are persisted too.
        await this.redis.xGroupCreate(keys.stream, PERSISTER_GROUP, '0', { MKSTREAM: true });
      } catch (error) {
        if (!(error instanceof Error && error.message.startsWith('BUSYGROUP'))) throw error;
      }
      this.streams.set(id, { template, keys, backlog: true });
    }
  }

  private async persistNextBatch(stream: StreamState): Promise<number> {
    const reply = await this.redis.xReadGroup(PERSISTER_GROUP, this.consumer, { key: stream.keys.stream, id: stream.backlog ? '0' : '>' },
      { COUNT: this.ctx.config.claimBatchSize }) as StreamsReply;
    const entries = reply?.[0]?.messages ?? [];
    if (entries.length === 0) {
      stream.backlog = false;
      return 0;
    }
    // Not replicated yet: PostgreSQL must not get a claim a failover could still take out of Redis
    // (claim-replication-fence.ts). The entries stay pending and are read again on the next pass.
    if (!(await replicatedNow(this.redis, stream.template.id, this.replication))) {
      stream.backlog = true;
      this.ctx.metrics.claimPersistDeferred.inc();
      return 0;
    }
    // A pending entry deleted from the stream comes back without fields: acknowledge it, nothing to write.
    const claims = entries.flatMap((entry) => (entry.message ? [claimFromStreamEntry(entry.message)] : []));
    const started = performance.now();
    if (claims.length > 0) await persistClaims(this.ctx, stream.template, claims);
    const ids = entries.map((entry) => entry.id);
    const transaction = this.redis.multi().xAck(stream.keys.stream, PERSISTER_GROUP, ids).xDel(stream.keys.stream, ids);
    if (claims.length > 0) transaction.hDel(stream.keys.claims, claims.map((claim) => claim.id));
    await transaction.exec();
    this.ctx.metrics.claimBatchSize.observe({ gate: 'redis' }, entries.length);
    this.ctx.metrics.claimBatchCommitDuration.observe({ gate: 'redis' }, (performance.now() - started) / 1000);
    return entries.length;
  }

  /** Takes over entries of dead persisters, forgets departed ones, retires finished events. */
  private async housekeeping(now: number): Promise<void> {
    this.nextHousekeeping = now + HOUSEKEEPING_MS;
    for (const stream of [...this.streams.values()]) {
      const { keys, template } = stream;
      const reclaimed = await this.redis.xAutoClaim(keys.stream, PERSISTER_GROUP, this.consumer, this.ctx.config.claimReclaimIdleMs, '0-0',
        { COUNT: this.ctx.config.claimBatchSize });
      if (reclaimed.messages.length > 0 || reclaimed.deletedMessages.length > 0) stream.backlog = true;
      for (const consumer of await this.redis.xInfoConsumers(keys.stream, PERSISTER_GROUP)) {
        if (consumer.name !== this.consumer && consumer.pending === 0 && consumer.idle > FORGET_CONSUMER_IDLE_MS) {
          await this.redis.xGroupDelConsumer(keys.stream, PERSISTER_GROUP, consumer.name);
        }
      }

      // Backlog gauges are measured at scrape time (claim-backlog.ts), not here: a dead persister
      // must not freeze them.
      // The window as it stands now (a change may have moved its end): from the refreshed cache.
      const endsAt = ((await this.ctx.claimTemplates.get(template.id)) ?? template).claimEndsAt.getTime();
      if (now > endsAt + DEACTIVATE_AFTER_CLOSE_MS && (await this.redis.xLen(keys.stream)) === 0) {
        // Separate commands: the index sets live in other cluster slots than the template's keys.
        await deactivateTemplate(this.redis, template.id);
        await this.redis.sRem(partnerActiveTemplatesKey(template.partnerId), template.id);
        // State and holdings carry their expiry from the gate (NX: only state loaded without one);
        // the stream and claims never get one before they are drained, or a claim could be lost.
        await this.redis.multi()
          .expire(keys.state, FINISHED_STATE_TTL_SECONDS, 'NX').expire(keys.users, FINISHED_STATE_TTL_SECONDS, 'NX')
          .expire(keys.claims, FINISHED_STATE_TTL_SECONDS).expire(keys.stream, FINISHED_STATE_TTL_SECONDS)
          .expire(keys.idempotency, FINISHED_STATE_TTL_SECONDS, 'NX')
          .exec();
        this.streams.delete(template.id);
        this.ctx.logger.info({ templateId: template.id }, 'claim event finished and fully persisted; retired from the persister');
      }
    }
  }
}
