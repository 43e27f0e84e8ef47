// The embedded claim gate: counters in this process and group commit. A claim is decided at once
// in memory, then waits for the next flush: the claims gathered for `lingerMs` (or a full batch)
// are inserted by one statement (its own transaction) per template, and only after it committed
// are they all answered. Up to `commitsInFlight` flushes are in PostgreSQL at once, so claims that
// arrive during a commit do not wait for it to end before theirs starts (docs/decisions/180). No
// 201 goes out for a row that is not committed. One process must own the counters (embedded mode runs one API process);
// PostgreSQL's constraints refuse anything a second owner would over-issue.
//
// Memory does not grow with an event's holders: a claim outside the window is refused before
// anything is opened; opening an event reads two numbers (issued count, highest slot); a user's
// holdings are read from PostgreSQL on the user's first claim (not when the event had no coupon at
// its opening and no holder has left memory since) and kept in a bounded LRU. An entry
// is dropped only when no claim of it is in flight, so everything it counted is committed and
// reading it again from PostgreSQL gives the same number (exact).
import { LRUCache } from 'lru-cache';
import { AppError } from '../errors.ts';
import type { CouponTemplate } from '../coupons/template-repository.ts';
import { belowIssued } from '../coupons/template-change-rules.ts';
import { couponValidity } from '../coupons/validity.ts';
import { isRetryableConflict, withRetry, type Db } from '../infra/db.ts';
import type { Logger } from '../infra/logger.ts';
import type { Metrics } from '../infra/metrics.ts';
import { ClaimRefusal, type AnsweredRefusal, type ClaimGate, type ClaimResult, type IssuedClaim } from './claim-gate.ts';
import { claimRefusal, soldOut, windowRefusal } from './claim-rules.ts';
import { HoldingsLookup } from './holdings-lookup.ts';
import { eventCounters, heldCounts, insertClaimedCoupons, openClaimEvent, type ClaimedCoupon } from './claim-repository.ts';

export interface GroupCommitOptions {
  /**
   * How long a free commit slot waits for company before flushing. 0: at the end of the current
   * turn of the event loop (process.nextTick), no timer: with 1,024 sockets ready at once libuv
   * polls again up to 48 times before it runs timers, so a timer can wait seconds (decision 180).
   */
  readonly lingerMs: number;
  /** Most claims in one flush; more wait for the next one. */
  readonly maxBatch: number;
  /** Claims inside the gate at once (deciding or awaiting their commit); beyond, 503 at once. */
  readonly maxInFlight?: number;
  /** Flushes in PostgreSQL at once (default 2); more claims wait for one of them to end. */
  readonly commitsInFlight?: number;
  /** Users whose holdings are cached, over all events. */
  readonly cachedUsers?: number;
  /** Events whose counters are cached. */
  readonly cachedEvents?: number;
}

const DEFAULT_MAX_IN_FLIGHT = 20_000;
const DEFAULT_COMMITS_IN_FLIGHT = 2;
/** ~150 bytes each: ~15 MB at most, whatever the number of holders. */
const DEFAULT_CACHED_USERS = 100_000;
const DEFAULT_CACHED_EVENTS = 1_000;
/** First outcomes of claims sent with an Idempotency-Key, kept a day (bounded: oldest forgotten first). */
const IDEMPOTENT_OUTCOMES = 100_000;
const IDEMPOTENT_OUTCOME_TTL_MS = 86_400_000;
/** A claim re-reads state after each load; more rounds than this means the state keeps moving. */
const MAX_ROUNDS = 8;

interface OpenEvent {
  /** The settings in force: replaced by a change (applySettings), read by every decision. */
  template: CouponTemplate;
  issued: number;
  slot: number;
  /** Claims of this event deciding or awaiting commit. */
  inFlight: number;
  /** Unique over the process, renewed by a resync: user entries of another epoch are read again. */
  epoch: number;
  /** While a resync rebuilds the counters, claims of the event wait for it (and its queued claims stay queued). */
  resyncing: Promise<void> | undefined;
  /** The event's group-commit statements in PostgreSQL now: a resync reads the counters once none is. */
  readonly statements: Set<Promise<unknown>>;
  /**
   * Every user holding a coupon of the event has an entry here: it had none when opened, and no
   * holder's entry has left memory since (nor did a resync renew the epoch). A user without an
   * entry then holds none, and is not read from PostgreSQL (decision 245).
   */
  everyHolderHere: boolean;
}

interface UserHoldings {
  /** Coupons of the event the user holds, committed or in flight. */
  held: number;
  inFlight: number;
  epoch: number;
}

/** A load that claims wait for: `waiters` of them, each pinning what it resolves with. */
interface Opening<T> {
  waiters: number;
  done: Promise<T>;
}

interface Waiting {
  readonly event: OpenEvent;
  readonly user: UserHoldings;
  readonly userKey: string;
  readonly coupon: ClaimedCoupon;
  readonly issued: IssuedClaim;
  readonly resolve: (claim: IssuedClaim) => void;
  readonly reject: (error: Error) => void;
}

/**
 * An LRU that never loses an entry with claims in flight: one evicted meanwhile waits aside until
 * its last claim settles (so the aside map holds at most one entry per claim in flight).
 */
/** An open event's counters as the claim rules read them: the settings in force and the coupons issued. */
function countersOf(event: OpenEvent) {
  const settings = event.template;
  return {
    totalQuantity: settings.totalQuantity,
    perUserLimit: settings.perUserLimit,
    ...windowOf(settings),
    paused: settings.paused,
    issued: event.issued,
  };
}

class SettledLru<V extends { inFlight: number }> {
  private readonly pinned = new Map<string, V>();
  private readonly lru: LRUCache<string, V>;

  /** `forgotten`: told of each entry evicted for good (once its claims settled). */
  constructor(max: number, private readonly forgotten?: (key: string, value: V) => void) {
    this.lru = new LRUCache<string, V>({
      max,
      dispose: (value, key, reason) => {
        if (reason !== 'evict') return;
        if (value.inFlight > 0) this.pinned.set(key, value);
        else this.forgotten?.(key, value);
      },
    });
  }

  get(key: string): V | undefined { return this.pinned.get(key) ?? this.lru.get(key); }
  peek(key: string): V | undefined { return this.pinned.get(key) ?? this.lru.peek(key); }
  set(key: string, value: V): void { this.pinned.delete(key); this.lru.set(key, value); }
  delete(key: string): void { this.pinned.delete(key); this.lru.delete(key); }
  /** The entry's claims all settled: if it was evicted, it goes now. */
  settled(key: string, value: V): void {
    if (value.inFlight > 0 || this.pinned.get(key) !== value) return;
    this.pinned.delete(key);
    this.forgotten?.(key, value);
  }
  get size(): number { return this.lru.size + this.pinned.size; }
}

const userKey = (templateId: string, userId: string): string => `${templateId} ${userId}`;
const templateOfUserKey = (key: string): string => key.slice(0, key.indexOf(' '));
const windowOf = (template: CouponTemplate) => ({ claimStartsAt: template.claimStartsAt.getTime(), claimEndsAt: template.claimEndsAt.getTime() });

export class MemoryClaimGate implements ClaimGate {
  readonly kind = 'memory';
  private readonly events: SettledLru<OpenEvent>;
  private readonly users: SettledLru<UserHoldings>;
  // Both hold one entry per claim waiting on it at most: bounded by maxInFlight.
  private readonly opening = new Map<string, Opening<OpenEvent>>();
  /** Settings changed while the event was being opened (at most one per opening in flight). */
  private readonly changedWhileOpening = new Map<string, CouponTemplate>();
  private readonly userLoads = new Map<string, Opening<UserHoldings | undefined>>();
  private readonly holdings: HoldingsLookup<number>;
  private readonly idempotent = new LRUCache<string, { userId: string; result: Promise<ClaimResult> }>({ max: IDEMPOTENT_OUTCOMES, ttl: IDEMPOTENT_OUTCOME_TTL_MS });
  private queue: Waiting[] = [];
  private inProgress = 0;
  private nextEpoch = 1;
  private commitsInFlight = 0;
  private readonly maxCommitsInFlight: number;
  /** A flush is scheduled (a linger timer, or `true` for one at the end of this turn). */
  private timer: NodeJS.Timeout | true | undefined;

  constructor(
    private readonly db: Db,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
    private readonly clock: () => Date,
    private readonly options: GroupCommitOptions,
  ) {
    this.events = new SettledLru(options.cachedEvents ?? DEFAULT_CACHED_EVENTS);
    this.users = new SettledLru(options.cachedUsers ?? DEFAULT_CACHED_USERS, (key, user) => {
      // A holder left memory: its event's users without an entry are read from PostgreSQL again.
      if (user.held === 0) return;
      const event = this.events.peek(templateOfUserKey(key));
      if (event?.epoch === user.epoch) event.everyHolderHere = false;
    });
    this.holdings = new HoldingsLookup((templateId, userIds) => heldCounts(db, templateId, userIds));
    this.maxCommitsInFlight = options.commitsInFlight ?? DEFAULT_COMMITS_IN_FLIGHT;
  }

  async claim(template: CouponTemplate, newCouponId: () => string, userId: string, idempotencyKey?: string): Promise<ClaimResult> {
    if (idempotencyKey === undefined) return this.claimOnce(template, newCouponId, userId);
    // One process holds the gate: the first outcome of a key lives here (a restart forgets it, as
    // it forgets nothing else that matters: the coupon is committed before the answer).
    const key = `${template.id} ${idempotencyKey}`;
    const first = this.idempotent.get(key);
    if (first) {
      if (first.userId !== userId) return { refusal: ClaimRefusal.IdempotencyKeyReused };
      return first.result;
    }
    const result = this.claimOnce(template, newCouponId, userId);
    this.idempotent.set(key, { userId, result });
    // Failures, window and pause refusals are not outcomes to replay (the Redis gate records neither).
    result.then((outcome) => {
      if ('refusal' in outcome && (outcome.refusal === ClaimRefusal.NotOpen || outcome.refusal === ClaimRefusal.Closed || outcome.refusal === ClaimRefusal.Paused)) this.idempotent.delete(key);
    }, () => this.idempotent.delete(key));
    return result;
  }

  /**
   * What claim() would answer now, when it is a refusal decided without awaiting anything: outside
   * the window; or, with the event (not resyncing) and the user held here, the decision itself.
   * Undefined when claim() must open, load, wait or would issue. Nothing is pinned: nothing awaits.
   */
  knownRefusal(template: CouponTemplate, userId: string): AnsweredRefusal | undefined {
    const nowMs = this.clock().getTime();
    const event = this.events.get(template.id);
    const outside = windowRefusal(windowOf(event?.template ?? template), nowMs);
    if (outside !== undefined || !event || event.resyncing) return outside;
    const counters = countersOf(event);
    const user = this.users.get(userKey(template.id, userId));
    // As decide(): without the user's holdings, only what answers every user alike.
    if (!user || user.epoch !== event.epoch) return counters.paused ? ClaimRefusal.Paused : soldOut(counters) ? ClaimRefusal.SoldOut : undefined;
    return claimRefusal(counters, user.held, nowMs);
  }

  private async claimOnce(template: CouponTemplate, newCouponId: () => string, userId: string): Promise<ClaimResult> {
    // Outside the window nothing is opened, read or marked live. An open event's settings are in force.
    const outside = windowRefusal(windowOf(this.events.peek(template.id)?.template ?? template), this.clock().getTime());
    if (outside !== undefined) return { refusal: outside };
    if (this.inProgress >= (this.options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT)) {
      throw new AppError('SERVICE_UNAVAILABLE', 'Too many claims are waiting for their commit; retry shortly.');
    }
    this.inProgress += 1;
    try {
      return await this.decide(template, newCouponId, userId);
    } finally {
      this.inProgress -= 1;
    }
  }

  async issuedCount(template: CouponTemplate): Promise<number | undefined> {
    return this.events.peek(template.id)?.issued;
  }

  /**
   * Synchronous, so atomic with every decision (a decision and its reservation are one step too).
   * An event being opened takes the change when its opening lands (it read PostgreSQL under the
   * gate lock, which the change holds, so it may hold the settings from before the change).
   */
  async applySettings(template: CouponTemplate): Promise<{ readonly refusedIssuedCount?: number }> {
    const event = this.events.peek(template.id);
    if (event && event.template.settingsVersion <= template.settingsVersion) {
      if (belowIssued(template.totalQuantity, event.issued)) return { refusedIssuedCount: event.issued };
      event.template = template;
    }
    if (this.opening.has(template.id)) {
      const pending = this.changedWhileOpening.get(template.id);
      if (!pending || pending.settingsVersion <= template.settingsVersion) this.changedWhileOpening.set(template.id, template);
    }
    return {};
  }

  /** Cached entries (for tests and measurements): bounded by the options whatever the events' size. */
  cacheSizes(): { events: number; users: number; queued: number } {
    return { events: this.events.size, users: this.users.size, queued: this.queue.length };
  }

  private async decide(template: CouponTemplate, newCouponId: () => string, userId: string): Promise<ClaimResult> {
    const key = userKey(template.id, userId);
    // The entries this claim keeps from eviction while it awaits (one inFlight count on each),
    // given back on every way out; a coupon taken keeps them as the claim's own in-flight counts.
    // Without them, caches smaller than the claimers at once would evict an entry between its
    // load and its use, again and again.
    let pinnedEvent: OpenEvent | undefined;
    let pinnedUser: UserHoldings | undefined;
    const unpinEvent = () => {
      if (pinnedEvent) this.release(this.events, template.id, pinnedEvent);
      pinnedEvent = undefined;
    };
    const unpinUser = () => {
      if (pinnedUser) this.release(this.users, key, pinnedUser);
      pinnedUser = undefined;
    };
    try {
      for (let round = 0; round < MAX_ROUNDS; round += 1) {
        const event = this.events.get(template.id);
        if (!event) {
          unpinEvent();
          pinnedEvent = await this.open(template, key, userId);
          continue;
        }
        if (pinnedEvent !== event) {
          unpinEvent();
          event.inFlight += 1;
          pinnedEvent = event;
        }
        if (event.resyncing) {
          await event.resyncing;
          continue;
        }
        const now = this.clock();
        const counters = countersOf(event);
        const user = this.users.get(key);
        if (!user || user.epoch !== event.epoch) {
          // Sold out (or closed meanwhile) answers every user alike: no lookup once the stock is gone.
          const early = windowRefusal(counters, now.getTime())
            ?? (counters.paused ? ClaimRefusal.Paused : soldOut(counters) ? ClaimRefusal.SoldOut : undefined);
          if (early !== undefined) return { refusal: early };
          if (!user && event.everyHolderHere) {
            this.users.set(key, { held: 0, inFlight: 0, epoch: event.epoch });
            continue;
          }
          unpinUser();
          pinnedUser = await this.loadUser(event, key, userId);
          continue;
        }
        if (pinnedUser !== user) {
          unpinUser();
          user.inFlight += 1;
          pinnedUser = user;
        }
        // From here to the enqueue nothing awaits: the decision and the reservation are one step.
        const refusal = claimRefusal(counters, user.held, now.getTime());
        if (refusal !== undefined) return { refusal };
        pinnedEvent = undefined; // now this claim's in-flight counts, released when its group commits
        pinnedUser = undefined;
        event.issued += 1;
        event.slot += 1;
        user.held += 1;
        const window = couponValidity(event.template.validity, now);
        const couponId = newCouponId();
        const issued: IssuedClaim = { couponId, slot: event.slot, seq: user.held, issuedAt: now, issuedCount: event.issued, ...window };
        const coupon: ClaimedCoupon = { id: couponId, userId, slot: issued.slot, seq: issued.seq, issuedAt: now, ...window };
        return { issued: await new Promise<IssuedClaim>((resolve, reject) => this.enqueue({ event, user, userKey: key, coupon, issued, resolve, reject })) };
      }
      throw new AppError('SERVICE_UNAVAILABLE', 'The claim state kept changing while it was loaded; retry.');
    } finally {
      unpinEvent();
      unpinUser();
    }
  }

  private release<V extends { inFlight: number }>(cache: SettledLru<V>, key: string, entry: V): void {
    entry.inFlight -= 1;
    cache.settled(key, entry);
  }

  /**
   * Opens the event once at a time: marks it live in PostgreSQL and reads its two counters, and
   * the holdings of the user whose claim opens it (same round trip). Resolves with the event
   * pinned once for every claim that waited for it.
   */
  private open(template: CouponTemplate, key: string, userId: string): Promise<OpenEvent> {
    let opening = this.opening.get(template.id);
    if (!opening) {
      const started: Opening<OpenEvent> = { waiters: 0, done: Promise.resolve(undefined as unknown as OpenEvent) };
      started.done = openClaimEvent(this.db, template.id, userId).then((opened) => {
        this.opening.delete(template.id);
        const changed = this.changedWhileOpening.get(template.id);
        this.changedWhileOpening.delete(template.id);
        // The settings read under the gate lock, unless a change landed after that read.
        const settings = changed && changed.settingsVersion >= opened.template.settingsVersion ? changed : opened.template;
        let event = this.events.peek(template.id);
        if (!event) {
          event = {
            template: settings, issued: opened.issuedCount, slot: opened.maxSlot, inFlight: 0, epoch: this.nextEpoch++, resyncing: undefined, statements: new Set(),
            everyHolderHere: opened.fresh,
          };
          this.events.set(template.id, event);
          this.users.set(key, { held: opened.userCouponIds.length, inFlight: 0, epoch: event.epoch });
        }
        event.inFlight += started.waiters;
        return event;
      }, (error: unknown) => {
        this.opening.delete(template.id);
        this.changedWhileOpening.delete(template.id);
        throw error;
      });
      opening = started;
      this.opening.set(template.id, opening);
    }
    opening.waiters += 1;
    return opening.done;
  }

  /**
   * Reads one user's holdings (batched with other users'). Exact at whatever moment it reads: a
   * user without a current entry has no claim in flight (entries with claims in flight are never
   * dropped, and a resync renews every user with claims queued), and nothing but this gate writes
   * into an opened event. Resolves with the entry pinned once for every claim that waited for it
   * (undefined when the event changed meanwhile: the claims read again).
   */
  private loadUser(event: OpenEvent, key: string, userId: string): Promise<UserHoldings | undefined> {
    let loading = this.userLoads.get(key);
    if (!loading) {
      const started: Opening<UserHoldings | undefined> = { waiters: 0, done: Promise.resolve(undefined) };
      started.done = this.holdings.get(event.template.id, userId).then((held = 0) => {
        this.userLoads.delete(key);
        if (this.events.peek(event.template.id) !== event || event.resyncing) return undefined;
        let user = this.users.peek(key);
        if (!user || user.epoch !== event.epoch) {
          user = { held, inFlight: 0, epoch: event.epoch };
          this.users.set(key, user);
        }
        user.inFlight += started.waiters;
        return user;
      }, (error: unknown) => {
        this.userLoads.delete(key);
        throw error;
      });
      loading = started;
      this.userLoads.set(key, loading);
    }
    loading.waiters += 1;
    return loading.done;
  }

  private enqueue(waiting: Waiting): void {
    this.queue.push(waiting);
    this.scheduleFlush();
  }

  /** A full batch goes at once, fewer claims after `lingerMs`; none while every commit slot is taken (the next one to end flushes). */
  private scheduleFlush(): void {
    if (this.commitsInFlight >= this.maxCommitsInFlight || this.timer || this.queue.length === 0) return;
    if (this.queue.length >= this.options.maxBatch) void this.flush();
    else if (this.options.lingerMs === 0) {
      // The claims decided in this turn (a holdings batch decides hundreds at once) go together.
      this.timer = true;
      process.nextTick(() => void this.flush());
    } else this.timer = setTimeout(() => void this.flush(), this.options.lingerMs);
  }

  private async flush(): Promise<void> {
    if (this.timer !== true) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.commitsInFlight >= this.maxCommitsInFlight) return;
    // In arrival order; claims of an event whose counters are being rebuilt stay queued (the rebuild counts them).
    const batch: Waiting[] = [];
    const kept: Waiting[] = [];
    for (const waiting of this.queue) (batch.length < this.options.maxBatch && !waiting.event.resyncing ? batch : kept).push(waiting);
    if (batch.length === 0) return;
    this.queue = kept;
    this.commitsInFlight += 1;
    try {
      const byEvent = new Map<OpenEvent, Waiting[]>();
      for (const waiting of batch) {
        const group = byEvent.get(waiting.event);
        if (group) group.push(waiting);
        else byEvent.set(waiting.event, [waiting]);
      }
      const commits = [...byEvent.values()].map((group) => this.commit(group));
      // More than a batch still waiting and a slot free: the next one goes beside this one.
      this.scheduleFlush();
      await Promise.all(commits);
    } finally {
      this.commitsInFlight -= 1;
      // Claims that arrived during the commit have waited long enough: flush them now.
      if (this.queue.length > 0) void this.flush();
    }
  }

  private async commit(group: Waiting[]): Promise<void> {
    const { event } = group[0]!;
    const { template } = event;
    const started = performance.now();
    let inserted: Set<string>;
    // One statement (INSERT + issued_count), atomic on its own: the group's one commit.
    const statement = withRetry(() => insertClaimedCoupons(this.db, template, group.map((w) => w.coupon)));
    event.statements.add(statement);
    try {
      inserted = await statement;
    } catch (error) {
      event.statements.delete(statement);
      this.logger.error({ err: error, templateId: template.id, claims: group.length }, 'claim group commit failed');
      // Claims wait from now on: none may be decided with counters that count these failed ones.
      const resync = this.resync(event, isRetryableConflict(error) ? 'retries exhausted' : 'commit failed');
      this.settle(group, new Set(), () => new AppError('SERVICE_UNAVAILABLE'));
      await resync;
      return;
    }
    event.statements.delete(statement);
    this.metrics.claimBatchSize.observe({ gate: this.kind }, group.length);
    this.metrics.claimBatchCommitDuration.observe({ gate: this.kind }, (performance.now() - started) / 1000);
    const refused = group.filter((waiting) => !inserted.has(waiting.coupon.id)).length;
    // A slot or (user, seq) already taken means the counters drifted from PostgreSQL.
    const resync = refused > 0 ? this.resync(event, `${refused} claims refused by database constraints`) : undefined;
    this.settle(group, inserted, () => new AppError('SERVICE_UNAVAILABLE', 'The claim conflicted with a coupon already in the database; retry.'));
    await resync;
  }

  /** Answers a committed group and releases what its claims held in the caches. */
  private settle(group: Waiting[], inserted: Set<string>, refusal: () => AppError): void {
    for (const waiting of group) {
      waiting.user.inFlight -= 1;
      waiting.event.inFlight -= 1;
      this.users.settled(waiting.userKey, waiting.user);
      if (inserted.has(waiting.coupon.id)) waiting.resolve(waiting.issued);
      else waiting.reject(refusal());
    }
    const { event } = group[0]!;
    this.events.settled(event.template.id, event);
  }

  /**
   * Rebuilds an event's counters from PostgreSQL plus the claims still queued, with the event's
   * claims held back meanwhile (new ones wait in decide, queued ones stay queued). It reads once
   * every statement of the event still in PostgreSQL has landed or failed, so the result is exact.
   * Users with claims queued are read again at once; every other cached user of the event is read
   * again on its next claim (a new epoch). A second failure meanwhile joins the rebuild under way.
   */
  private resync(event: OpenEvent, reason: string): Promise<void> {
    if (event.resyncing) return event.resyncing;
    const { template } = event;
    const run = async () => {
      try {
        while (event.statements.size > 0) await Promise.allSettled([...event.statements]);
        const counters = await eventCounters(this.db, template.id);
        const queued = this.queue.filter((waiting) => waiting.event === event);
        const held = await heldCounts(this.db, template.id, [...new Set(queued.map((waiting) => waiting.coupon.userId))]);
        event.issued = counters.issuedCount + queued.length;
        event.slot = Math.max(counters.maxSlot, ...queued.map((waiting) => waiting.coupon.slot));
        event.epoch = this.nextEpoch++;
        // Users of the old epoch are read again, holders included.
        event.everyHolderHere = false;
        for (const waiting of queued) {
          waiting.user.epoch = event.epoch;
          waiting.user.held = held.get(waiting.coupon.userId) ?? 0;
        }
        for (const waiting of queued) waiting.user.held += 1;
        this.logger.warn({ templateId: template.id, reason, issued: event.issued }, 'claim counters resynchronised from PostgreSQL');
      } catch (error) {
        // Forget the event: the next claim opens it afresh.
        if (this.events.peek(template.id) === event) this.events.delete(template.id);
        this.logger.error({ err: error, templateId: template.id }, 'claim counters could not be resynchronised');
      } finally {
        event.resyncing = undefined;
        // Its queued claims waited for the rebuild: they go now.
        if (this.queue.length > 0) void this.flush();
      }
    };
    event.resyncing = run();
    return event.resyncing;
  }
}
