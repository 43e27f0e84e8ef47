// The distributed claim gate: one EVALSHA of claim-4.lua per claim. The script records the claim
// in Redis (AOF) and appends it to the template's stream; the claim persister writes it to
// PostgreSQL. State is loaded from PostgreSQL the first time a template is claimed here.
import { randomUUID } from 'node:crypto';
import type { CouponTemplate } from '../coupons/template-repository.ts';
import type { Db } from '../infra/db.ts';
import { loadLuaScript, runLuaScript } from '../infra/lua.ts';
import type { Redis } from '../infra/redis.ts';
import { ClaimRefusal, isAnsweredRefusal, type ClaimGate, type ClaimResult } from './claim-gate.ts';
import { readGateSnapshot } from './claim-repository.ts';
import { ACTIVE_TEMPLATES_KEY, partnerActiveTemplatesKey, stagingUsersKey, templateClaimKeys, type TemplateClaimKeys } from './redis-keys.ts';

const CLAIM = loadLuaScript(new URL('./claim-4.lua', import.meta.url));
const LOAD_TEMPLATE = loadLuaScript(new URL('./load-template-3.lua', import.meta.url));

const STAGING_CHUNK = 1_000;
/** Far beyond any clock skew between API hosts and Redis. */
const FINISHED_MARGIN_MS = 60_000;
/** A loader that dies half-way leaves its staging hash behind; it expires on its own. */
const STAGING_TTL_SECONDS = 600;

export class RedisClaimGate implements ClaimGate {
  readonly kind = 'redis';
  private readonly keys = new Map<string, TemplateClaimKeys>();
  private readonly loading = new Map<string, Promise<void>>();

  constructor(
    private readonly redis: Redis,
    private readonly db: Db,
  ) {}

  async claim(template: CouponTemplate, couponId: string, userId: string): Promise<ClaimResult> {
    const keys = this.keysOf(template.id).claimScriptKeys;
    let reply = await runLuaScript(this.redis, CLAIM, keys, [couponId, userId]) as number[];
    if (reply[0] === ClaimRefusal.NotLoaded) {
      // A long-finished event's state has expired: answer without reloading every holder into Redis.
      if (Date.now() > template.claimEndsAt.getTime() + FINISHED_MARGIN_MS) return { refusal: ClaimRefusal.Closed };
      await this.load(template);
      reply = await runLuaScript(this.redis, CLAIM, keys, [couponId, userId]) as number[];
    }
    const [first, seq, issuedAtMs, issuedCount] = reply;
    if (reply.length === 1) {
      if (isAnsweredRefusal(first!)) return { refusal: first };
      throw new Error(`claim-4.lua answered ${first} for template ${template.id} right after loading it`);
    }
    return { issued: { slot: first!, seq: seq!, issuedAt: new Date(issuedAtMs!), issuedCount: issuedCount! } };
  }

  async issuedCount(template: CouponTemplate): Promise<number | undefined> {
    const issued = await this.redis.hGet(this.keysOf(template.id).state, 'issued');
    return issued === null ? undefined : Number(issued);
  }

  /** Loads the template's state once per process at a time; the script keeps it set-if-absent. */
  load(template: CouponTemplate): Promise<void> {
    let loading = this.loading.get(template.id);
    if (!loading) {
      loading = loadTemplateState(this.redis, this.db, template).then(() => undefined).finally(() => this.loading.delete(template.id));
      this.loading.set(template.id, loading);
    }
    return loading;
  }

  private keysOf(templateId: string): TemplateClaimKeys {
    let keys = this.keys.get(templateId);
    if (!keys) {
      if (this.keys.size >= 10_000) this.keys.clear();
      keys = templateClaimKeys(templateId);
      this.keys.set(templateId, keys);
    }
    return keys;
  }
}

/**
 * Loads a template's claim state from PostgreSQL (remaining = total − issued, every user's
 * coupons) unless Redis already holds live state. Returns whether this call loaded it.
 * The template is registered in the index sets first, so the persister and read-your-writes
 * know of it before the first claim can exist.
 */
export async function loadTemplateState(redis: Redis, db: Db, template: CouponTemplate): Promise<boolean> {
  await redis.sAdd(ACTIVE_TEMPLATES_KEY, template.id);
  await redis.sAdd(partnerActiveTemplatesKey(template.partnerId), template.id);
  const keys = templateClaimKeys(template.id);
  if (await redis.exists(keys.state)) return false;

  const snapshot = await readGateSnapshot(db, template.id);
  const staging = stagingUsersKey(template.id, randomUUID());
  const holdings = [...snapshot.holdings].map(([userId, couponIds]) => [userId, couponIds.join(' ')] as const);
  for (let start = 0; start < holdings.length; start += STAGING_CHUNK) {
    await redis.hSet(staging, Object.fromEntries(holdings.slice(start, start + STAGING_CHUNK)));
    await redis.expire(staging, STAGING_TTL_SECONDS);
  }
  const loaded = await runLuaScript(redis, LOAD_TEMPLATE, [keys.state, keys.users, staging], [
    String(template.totalQuantity ?? -1),
    String(template.perUserLimit),
    String(template.claimStartsAt.getTime()),
    String(template.claimEndsAt.getTime()),
    String(snapshot.issuedCount),
    String(snapshot.maxSlot),
  ]);
  return loaded === 1;
}
