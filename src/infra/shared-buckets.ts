// Limits per key and one-second window (API keys' rate limits, claim throttles), decided in this
// process with no Redis call on the request path, and settled with Redis in the background every
// SETTLE_INTERVAL_MS so the limit holds across every API process (docs/decisions/190).
//
// Per key and window a process may admit its floor, ceil(limit / processes), without asking
// (reserved for it in Redis once it has settled the key), and beyond it from leases Redis grants
// (settle-bucket-2.lua: never past what the limit leaves after the tokens granted or reported and
// every process's reserved floor), asked for ahead of the window from the demand it sees.
// Redis unreachable: each process admits up to the whole limit itself (fail open, logged, counted).
// Memory: buckets live in one LRU per group (the partner) with a cap per group and in total.
import { randomUUID } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Logger } from './logger.ts';
import { loadLuaScript, runLuaScript } from './lua.ts';
import type { Metrics } from './metrics.ts';
import type { Redis } from './redis.ts';

const SETTLE = loadLuaScript(new URL('./settle-bucket-2.lua', import.meta.url));
const HEARTBEAT = loadLuaScript(new URL('./bucket-processes-1.lua', import.meta.url));
const PROCESSES_KEY = 'stampede:bucket-processes';

export const WINDOW_MS = 1_000;
export const SETTLE_INTERVAL_MS = 100;
/** The next window's lease is asked for this close to the window's end (two or three settles' chances). */
const PREFETCH_LEAD_MS = 2.5 * SETTLE_INTERVAL_MS;
/** A lease covers the demand seen so far, scaled to the time it must last, plus this headroom. */
const HEADROOM = 1.2;
const HEARTBEAT_MS = 1_000;
/** A process stops counting among the processes this long after its last heartbeat. */
const PROCESS_TTL_MS = 3_000;
/** A bucket's Redis hash outlives its window by this much (the next window reads it for the process count). */
const HASH_TTL_MS = 3 * WINDOW_MS;
/** A bucket untouched this long is dropped from memory (its windows are over). */
const IDLE_MS = 3 * WINDOW_MS;
const FAILURE_LOG_EVERY_MS = 10_000;

export const DEFAULT_MAX_BUCKETS = 100_000;
export const DEFAULT_MAX_BUCKETS_PER_GROUP = 25_000;

export interface BucketRequest {
  /** What is limited, with the ids that make it unique: 'api-key', 'claim-user:<templateId>', … */
  readonly scope: string;
  readonly key: string;
  /** Whose memory the bucket counts against (the partner): a group evicts its own buckets first. */
  readonly group: string;
  /** Requests admitted per window (second). */
  readonly limit: number;
  /**
   * 'always': every bucket with requests settles and asks for the next window's lease (few keys,
   * the API key limit: exact once every process serving the key has settled it).
   * 'beyond-share': a bucket settles only once this process has admitted its fair share in a
   * window (many keys, nearly all quiet: per-user throttles cost Redis nothing until one floods).
   */
  readonly settle: 'always' | 'beyond-share';
}

export interface BucketDecision {
  readonly allowed: boolean;
  /** The window the request was counted in (epoch ms / WINDOW_MS). */
  readonly window: number;
  /** Until the window ends: a refused request may be admitted then. */
  readonly retryAfterMs: number;
}

interface Bucket {
  readonly redisPrefix: string;
  readonly eager: boolean;
  limit: number;
  window: number;
  /** Tokens of `window` leased from Redis and not yet used. */
  lease: number;
  /** Tokens admitted in `window` from the floor, without a lease. */
  floorUsed: number;
  /** This key's floor as Redis last computed it; 0: not known (the limit over the processes alive). */
  fair: number;
  /** Tokens admitted without a lease and not yet reported to Redis. */
  unreported: number;
  /** Requests seen in `window`, admitted or not: the demand a lease is sized by. */
  demand: number;
  admitted: number;
  /** Redis was asked for `window`: this process counts among the key's processes there. */
  registered: boolean;
  nextWindow: number;
  nextLease: number;
  /** Redis granted nothing more for the next window: ask no more before it starts. */
  nextExhausted: boolean;
  settlingCurrent: boolean;
  settlingNext: boolean;
}

export interface SharedBucketsOptions {
  readonly redis: Redis | undefined;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Processes expected before the first heartbeat answers (STAMPEDE_PROCESSES). */
  readonly expectedProcesses?: number;
  readonly maxBuckets?: number;
  readonly maxBucketsPerGroup?: number;
  readonly now?: () => number;
}

export class SharedBuckets {
  readonly processId = randomUUID();
  private readonly groups = new Map<string, LRUCache<string, Bucket>>();
  private size = 0;
  /** Buckets that need Redis in the current window. */
  private readonly pending = new Set<Bucket>();
  private processes: number;
  private healthy = true;
  private lastFailureLog = 0;
  private lastHeartbeat = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly maxBuckets: number;
  private readonly maxPerGroup: number;
  private readonly now: () => number;

  constructor(private readonly options: SharedBucketsOptions) {
    this.processes = Math.max(1, options.expectedProcesses ?? 1);
    this.maxBuckets = options.maxBuckets ?? DEFAULT_MAX_BUCKETS;
    this.maxPerGroup = Math.min(options.maxBucketsPerGroup ?? DEFAULT_MAX_BUCKETS_PER_GROUP, this.maxBuckets);
    this.now = options.now ?? Date.now;
  }

  /** Counts one request against its bucket and says whether it is admitted. Synchronous: no I/O. */
  take(request: BucketRequest): BucketDecision {
    const now = this.now();
    const window = Math.floor(now / WINDOW_MS);
    const retryAfterMs = (window + 1) * WINDOW_MS - now;
    const bucket = this.bucketFor(request, window);
    if (bucket.window !== window) {
      bucket.limit = request.limit;
      this.roll(bucket, window);
    } else if (bucket.limit !== request.limit) this.changeLimit(bucket, request.limit);
    bucket.demand += 1;
    let allowed = true;
    if (bucket.lease > 0) bucket.lease -= 1;
    else if (this.floorLeft(bucket) > 0) {
      bucket.floorUsed += 1;
      bucket.unreported += 1;
    } else if (!this.healthy && bucket.admitted < bucket.limit) bucket.unreported += 1; // fail open, per process
    else allowed = false;
    if (allowed) bucket.admitted += 1;
    if (this.options.redis && (bucket.eager || bucket.registered || this.floorLeft(bucket) === 0)) {
      this.pending.add(bucket);
      this.start();
    }
    return { allowed, window, retryAfterMs };
  }

  /** Buckets held in memory (all groups). */
  get bucketCount(): number {
    return this.size;
  }

  /** Stops settling (the app closes); pending reports are dropped. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private start(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => this.tick(), SETTLE_INTERVAL_MS);
    this.timer.unref();
    this.heartbeat();
  }

  /** What this process may still admit in the bucket's window without a lease: its floor, leases apart. */
  private floorLeft(bucket: Bucket): number {
    if (!this.options.redis) return bucket.limit - bucket.floorUsed;
    const floor = bucket.fair > 0 ? Math.min(bucket.fair, bucket.limit) : Math.ceil(bucket.limit / this.processes);
    return Math.max(0, floor - bucket.floorUsed);
  }

  private bucketFor(request: BucketRequest, window: number): Bucket {
    let group = this.groups.get(request.group);
    const id = `${request.scope}\u0000${request.key}`;
    const found = group?.get(id);
    if (found) return found;
    if (!group) {
      group = new LRUCache<string, Bucket>({
        max: this.maxPerGroup,
        ttl: IDLE_MS,
        updateAgeOnGet: true,
        dispose: (bucket, _key, reason) => {
          this.size -= 1;
          this.pending.delete(bucket);
          if (reason === 'evict') this.options.metrics.bucketEvictions.inc();
        },
      });
      this.groups.set(request.group, group);
    }
    if (this.size >= this.maxBuckets && group.size < this.maxPerGroup) this.evictFromLargestGroup();
    const bucket: Bucket = {
      redisPrefix: `stampede:bucket:{${request.scope}:${request.key}}:`,
      eager: request.settle === 'always',
      limit: request.limit,
      window,
      lease: 0,
      floorUsed: 0,
      fair: 0,
      unreported: 0,
      demand: 0,
      admitted: 0,
      registered: false,
      nextWindow: -1,
      nextLease: 0,
      nextExhausted: false,
      settlingCurrent: false,
      settlingNext: false,
    };
    group.set(id, bucket);
    this.size += 1;
    return bucket;
  }

  /** At the total cap, the group holding the most buckets gives up its least recently used one. */
  private evictFromLargestGroup(): void {
    let largest: LRUCache<string, Bucket> | undefined;
    for (const group of this.groups.values()) if (!largest || group.size > largest.size) largest = group;
    largest?.pop(); // disposed as an eviction (counted there)
  }

  private roll(bucket: Bucket, window: number): void {
    bucket.window = window;
    bucket.demand = 0;
    bucket.admitted = 0;
    bucket.unreported = 0;
    bucket.floorUsed = 0;
    const prefetched = bucket.nextWindow === window;
    bucket.lease = prefetched ? Math.min(bucket.nextLease, bucket.limit) : 0;
    bucket.registered = prefetched;
    bucket.nextLease = 0;
  }

  /** A lowered limit applies from the next request: what this process holds is cut to what the new one leaves. */
  private changeLimit(bucket: Bucket, limit: number): void {
    bucket.limit = limit;
    bucket.fair = 0;
    bucket.lease = Math.min(bucket.lease, Math.max(0, limit - bucket.admitted));
    bucket.nextLease = Math.min(bucket.nextLease, limit);
  }

  private tick(): void {
    const now = this.now();
    const window = Math.floor(now / WINDOW_MS);
    const left = (window + 1) * WINDOW_MS - now;
    const elapsed = Math.max(now - window * WINDOW_MS, SETTLE_INTERVAL_MS);
    const prefetch = left <= PREFETCH_LEAD_MS;
    for (const bucket of this.pending) {
      if (bucket.window < window) {
        this.pending.delete(bucket); // quiet since its window ended; its next request adds it again
        continue;
      }
      const rate = bucket.demand / elapsed;
      if (!bucket.settlingCurrent) {
        const want = Math.max(0, Math.ceil(rate * Math.max(left, SETTLE_INTERVAL_MS) * HEADROOM) - bucket.lease - this.floorLeft(bucket));
        // A key whose lease and floor cover its demand costs Redis nothing until the next window's lease.
        if (want > 0) void this.settle(bucket, window, want);
      }
      if (prefetch && !bucket.settlingNext) {
        // Asked again at each settle of the lead while the lease granted falls short of the demand.
        const held = bucket.nextWindow === window + 1 ? bucket.nextLease : 0;
        const want = Math.max(1, Math.ceil(rate * WINDOW_MS * HEADROOM)) - held;
        if (want > 0 && !(bucket.nextWindow === window + 1 && bucket.nextExhausted)) void this.settle(bucket, window + 1, want);
      }
    }
    if (now - this.lastHeartbeat >= HEARTBEAT_MS) this.heartbeat();
  }

  private async settle(bucket: Bucket, window: number, want: number): Promise<void> {
    const redis = this.options.redis!;
    const current = window === bucket.window;
    const report = current ? bucket.unreported : 0;
    if (current) {
      bucket.unreported = 0;
      bucket.settlingCurrent = true;
    } else {
      bucket.settlingNext = true;
    }
    try {
      const reply = await runLuaScript(redis, SETTLE, [bucket.redisPrefix + window, bucket.redisPrefix + (window - 1)], [
        String(bucket.limit), String(report), String(want), this.processId, String(HASH_TTL_MS),
      ]) as [number, number];
      this.succeeded();
      const grant = Number(reply[0]);
      bucket.fair = Number(reply[1]);
      if (window === bucket.window) {
        bucket.lease += grant;
        bucket.registered = true;
      } else if (window > bucket.window) {
        if (bucket.nextWindow !== window) bucket.nextLease = 0;
        bucket.nextWindow = window;
        bucket.nextLease += grant;
        bucket.nextExhausted = grant === 0;
      } // else the window is over: the grant is never used
    } catch (error) {
      if (current && bucket.window === window) bucket.unreported += report;
      this.failed(error);
    } finally {
      if (current) bucket.settlingCurrent = false;
      else bucket.settlingNext = false;
    }
  }

  private heartbeat(): void {
    const redis = this.options.redis;
    if (!redis) return;
    this.lastHeartbeat = this.now();
    for (const group of this.groups.values()) group.purgeStale();
    runLuaScript(redis, HEARTBEAT, [PROCESSES_KEY], [this.processId, String(PROCESS_TTL_MS)]).then(
      (count) => {
        this.processes = Math.max(1, Number(count));
        this.succeeded();
      },
      (error: unknown) => this.failed(error),
    );
  }

  private succeeded(): void {
    if (this.healthy) return;
    this.healthy = true;
    this.options.logger.info('rate limits settle with Redis again');
  }

  private failed(error: unknown): void {
    if (this.stopped) return;
    this.healthy = false;
    this.options.metrics.bucketSettleFailures.inc();
    const now = Date.now();
    if (now - this.lastFailureLog >= FAILURE_LOG_EVERY_MS) {
      this.lastFailureLog = now;
      this.options.logger.warn({ err: error }, 'rate limits cannot settle with Redis: each process admits up to the whole limit until it can');
    }
  }
}
