// The distributed claim gate: one EVALSHA of claim-5.lua per claim. The script records the claim
// in Redis (AOF) and appends it to the template's stream; the claim persister writes it to
// PostgreSQL. With STAMPEDE_REDIS_MIN_REPLICAS ≥ 1 an issued claim is answered only once that
// many replicas have it (WAIT on the connection that wrote it, one WAIT per event and tick for all
// the claims answered meanwhile), so a failover to a replica cannot lose it. Nothing is loaded per
// holder up front: a claim inside the window opens the event
// (two counters), and a user's holdings are loaded on the user's first claim, so an event's Redis
// state grows with its claimers, not its holders, and expires after the event.
import { LRUCache } from 'lru-cache';
import type { CouponTemplate } from '../coupons/template-repository.ts';
import { AppError } from '../errors.ts';
import type { Db } from '../infra/db.ts';
import { loadLuaScript, runLuaScript } from '../infra/lua.ts';
import { waitForReplicas, type Redis } from '../infra/redis.ts';
import { CLAIM_EVENT_SETTLE_MS } from '../coupons/gate-lock.ts';
import { ClaimRefusal, isAnsweredRefusal, type ClaimGate, type ClaimResult } from './claim-gate.ts';
import type { ReplicationOptions } from './claim-replication-fence.ts';
import { openClaimEvent, usersCouponIds } from './claim-repository.ts';
import { HoldingsLookup } from './holdings-lookup.ts';
import { activeTemplatesKeyOf, partnerActiveTemplatesKey, templateClaimKeys, type TemplateClaimKeys } from './redis-keys.ts';

const CLAIM = loadLuaScript(new URL('./claim-5.lua', import.meta.url));
const LOAD_TEMPLATE = loadLuaScript(new URL('./load-template-2.lua', import.meta.url));
const CHANGE_SETTINGS = loadLuaScript(new URL('./change-settings-2.lua', import.meta.url));

/** An event's state and holdings outlive its window by the hour reconcile watches it, plus a margin. */
export const CLAIM_STATE_RETENTION_MS = CLAIM_EVENT_SETTLE_MS + 600_000;
/** A claim loads at most the event and then its user; more rounds mean the state keeps vanishing. */
const MAX_ROUNDS = 4;
/** Loads in flight (one per distinct user or event being loaded); beyond, claims answer 503. */
const MAX_LOADS = 10_000;

export const claimStateExpiresAt = (template: CouponTemplate): number => template.claimEndsAt.getTime() + CLAIM_STATE_RETENTION_MS;

/** The settings fields of the state hash, in change-settings-2.lua's ARGV order (load-template-2.lua's ARGV[3..12]). */
export function settingsArgs(template: CouponTemplate): string[] {
  const { validity } = template;
  return [
    String(template.totalQuantity ?? -1),
    String(template.perUserLimit),
    template.paused ? '1' : '0',
    String(template.claimStartsAt.getTime()),
    String(template.claimEndsAt.getTime()),
    validity.type === 'ABSOLUTE' ? 'A' : 'R',
    String(validity.type === 'ABSOLUTE' ? validity.validFrom.getTime() : validity.days * 86_400_000),
    String(validity.type === 'ABSOLUTE' ? validity.validUntil.getTime() : 0),
    String(template.settingsVersion),
    String(claimStateExpiresAt(template)),
  ];
}

export class RedisClaimGate implements ClaimGate {
  readonly kind = 'redis';
  private readonly keys = new LRUCache<string, TemplateClaimKeys>({ max: 10_000 });
  private readonly loading = new Map<string, Promise<unknown>>();
  private readonly holdings: HoldingsLookup<string[]>;
  /** Per event, the WAIT not sent yet that the claims answered since the last one join. */
  private readonly nextWait = new Map<string, Promise<number>>();

  constructor(
    private readonly redis: Redis,
    private readonly db: Db,
    private readonly replication: ReplicationOptions = { minReplicas: 0, timeoutMs: 0 },
  ) {
    this.holdings = new HoldingsLookup((templateId, userIds) => usersCouponIds(db, templateId, userIds));
  }

  async claim(template: CouponTemplate, newCouponId: () => string, userId: string, idempotencyKey = ''): Promise<ClaimResult> {
    const claimKeys = this.keysOf(template.id);
    const keys = claimKeys.claimScriptKeys;
    const args = [newCouponId(), userId, String(template.claimStartsAt.getTime()), String(template.claimEndsAt.getTime()), idempotencyKey];
    // The user's coupon ids read from PostgreSQL, once claim-5.lua asked for them (-6).
    let userCoupons: string[] | undefined;
    for (let round = 0; round < MAX_ROUNDS; round += 1) {
      const reply = await runLuaScript(this.redis, CLAIM, keys, userCoupons ? [...args, userCoupons.join(' ')] : args) as Array<number | string>;
      const [first, seq, issuedAtMs, issuedCount, issuedCouponId, validFrom, validUntil, limit, limitVersion] = reply as [number, number, number, number, string, string?, string?, number?, number?];
      if (reply.length > 1) {
        if (this.replication.minReplicas > 0) await this.replicated(claimKeys.state);
        const window = validUntil === undefined || validUntil === '' ? {} : { validFrom: new Date(Number(validFrom)), validUntil: new Date(Number(validUntil)) };
        const reachedLimit = limit === undefined ? {} : { reachedLimit: seq >= limit, ...(limitVersion === undefined ? {} : { limitVersion }) };
        return { issued: { couponId: issuedCouponId, slot: first, seq, issuedAt: new Date(issuedAtMs), issuedCount, ...window, ...reachedLimit } };
      }
      if (first === ClaimRefusal.NotLoaded) {
        // The opening reads the opener's coupons in its transaction: the retry needs no other read.
        const opened = await this.once(`event ${template.id}`, () => loadTemplateState(this.redis, this.db, template, userId)) as OpeningResult;
        if (opened.userId === userId && opened.userCouponIds) userCoupons = opened.userCouponIds;
      } else if (first === ClaimRefusal.UserNotLoaded) {
        userCoupons = (await this.once(`user ${template.id} ${userId}`, () => this.holdings.get(template.id, userId)) as string[] | undefined) ?? [];
      } else if (isAnsweredRefusal(first!)) {
        return { refusal: first };
      } else {
        throw new Error(`claim-5.lua answered ${first} for template ${template.id}`);
      }
    }
    throw new AppError('SERVICE_UNAVAILABLE', 'The claim state kept vanishing while it was loaded; retry.');
  }

  async applySettings(template: CouponTemplate): Promise<{ readonly refusedIssuedCount?: number }> {
    const keys = this.keysOf(template.id);
    const reply = await runLuaScript(this.redis, CHANGE_SETTINGS, [keys.state, keys.users], settingsArgs(template)) as number[];
    return reply[0] === -1 ? { refusedIssuedCount: reply[1]! } : {};
  }

  /**
   * Resolves once minReplicas replicas have every write this process sent to the event's master so
   * far; throws CLAIM_NOT_REPLICATED when WAIT timed out with fewer (the claim may still survive).
   * A WAIT is sent on the next tick and covers every claim answered before it on that connection.
   */
  private async replicated(stateKey: string): Promise<void> {
    let wait = this.nextWait.get(stateKey);
    if (!wait) {
      wait = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        this.nextWait.delete(stateKey);
        return waitForReplicas(this.redis, stateKey, this.replication.minReplicas, this.replication.timeoutMs);
      });
      this.nextWait.set(stateKey, wait);
    }
    // WAIT failing (the master demoted during a failover, the connection lost) leaves the claim as
    // unknown as a WAIT that timed out: it ran, but may not be on the node that is master now.
    const acknowledged = await wait.catch(() => -1);
    if (acknowledged < this.replication.minReplicas) {
      const reached = acknowledged < 0 ? 'could not be confirmed by its Redis master' : `reached ${acknowledged} of the ${this.replication.minReplicas} Redis replicas it must`;
      throw new AppError('CLAIM_NOT_REPLICATED', `The claim ${reached} before it is confirmed; retry with the same Idempotency-Key to learn its outcome.`);
    }
  }

  async issuedCount(template: CouponTemplate): Promise<number | undefined> {
    const issued = await this.redis.hGet(this.keysOf(template.id).state, 'issued');
    return issued === null ? undefined : Number(issued);
  }

  /** One load per key at a time in this process (the scripts keep them set-if-absent across processes). */
  private once(key: string, load: () => Promise<unknown>): Promise<unknown> {
    let loading = this.loading.get(key);
    if (!loading) {
      if (this.loading.size >= MAX_LOADS) throw new AppError('SERVICE_UNAVAILABLE', 'Too many claim states are loading; retry shortly.');
      loading = load().finally(() => this.loading.delete(key));
      this.loading.set(key, loading);
    }
    return loading;
  }

  private keysOf(templateId: string): TemplateClaimKeys {
    let keys = this.keys.get(templateId);
    if (!keys) {
      keys = templateClaimKeys(templateId);
      this.keys.set(templateId, keys);
    }
    return keys;
  }
}

export interface OpeningResult {
  /** Whether this call loaded the state (false: live state existed, nothing changed). */
  readonly loaded: boolean;
  readonly userId: string;
  /** The opening user's coupon ids, read in the opening transaction; undefined when state existed. */
  readonly userCouponIds: string[] | undefined;
}

/**
 * Opens a template's claim event in Redis unless it holds live state: marks it live in PostgreSQL
 * and reads its two counters (coupons/gate-lock.ts) with the opening user's coupons, then sets the
 * counters if absent. The template is registered in the index sets first, so the persister and
 * read-your-writes know of it before the first claim can exist.
 */
export async function loadTemplateState(redis: Redis, db: Db, template: CouponTemplate, userId: string): Promise<OpeningResult> {
  const keys = templateClaimKeys(template.id);
  // Sent together (node-redis pipelines commands issued in one tick); the sets are in other slots.
  const [, , exists] = await Promise.all([
    redis.sAdd(activeTemplatesKeyOf(template.id), template.id),
    redis.sAdd(partnerActiveTemplatesKey(template.partnerId), template.id),
    redis.hExists(keys.state, 'issued'),
  ]);
  if (exists) return { loaded: false, userId, userCouponIds: undefined };
  // The settings come from the opening transaction (under the gate lock), not from a cached template.
  const opened = await openClaimEvent(db, template.id, userId);
  const loaded = await runLuaScript(redis, LOAD_TEMPLATE, [keys.state, keys.users], [
    String(opened.issuedCount),
    String(opened.maxSlot),
    ...settingsArgs(opened.template),
    opened.fresh ? '1' : '0',
  ]);
  return { loaded: loaded === 1, userId, userCouponIds: opened.userCouponIds };
}
