// Read-your-writes for the Redis gate (the PendingCoupons port of coupons/pending-coupons.ts). A
// claimed coupon lives in its template's claims hash from the claim until the persister has
// committed it. A coupon id does not name its template, so the lookup goes through the partner's
// set of templates with claim state in Redis (written by the loader before any claim can exist):
// one HGET per active template of that partner, all sent at once. The claim hot path pays nothing
// for this. Found claims are inserted with the persister's idempotent insert.
import type { PendingCoupons } from '../coupons/pending-coupons.ts';
import { AppError } from '../errors.ts';
import type { Db } from '../infra/db.ts';
import type { Logger } from '../infra/logger.ts';
import { loadLuaScript, runLuaScript } from '../infra/lua.ts';
import type { Metrics } from '../infra/metrics.ts';
import type { Redis } from '../infra/redis.ts';
import { claimFromRecord } from './claim-record.ts';
import type { ClaimedCoupon } from './claim-repository.ts';
import { persistClaims } from './claim-writer.ts';
import { replicatedNow, type ReplicationOptions } from './claim-replication-fence.ts';
import { partnerActiveTemplatesKey, templateClaimKeys } from './redis-keys.ts';
import type { ClaimTemplates } from './claim-templates.ts';

const PENDING_USER_CLAIMS = loadLuaScript(new URL('./pending-user-claims-2.lua', import.meta.url));

export class RedisPendingCoupons implements PendingCoupons {
  constructor(private readonly deps: { redis: Redis; db: Db; logger: Logger; metrics: Metrics; templates: ClaimTemplates; replication: ReplicationOptions }) {}

  async persistCoupon(partnerId: string, couponId: string): Promise<void> {
    const { redis } = this.deps;
    const templateIds = await redis.sMembers(partnerActiveTemplatesKey(partnerId));
    const records = await Promise.all(templateIds.map((templateId) => redis.hGet(templateClaimKeys(templateId).claims, couponId)));
    await Promise.all(templateIds.map(async (templateId, index) => {
      const record = records[index];
      if (record) await this.persist(partnerId, templateId, [claimFromRecord(couponId, record)]);
    }));
  }

  async persistUserCoupons(partnerId: string, userId: string): Promise<void> {
    const { redis } = this.deps;
    const templateIds = await redis.sMembers(partnerActiveTemplatesKey(partnerId));
    await Promise.all(templateIds.map(async (templateId) => {
      const keys = templateClaimKeys(templateId);
      const flat = await runLuaScript(redis, PENDING_USER_CLAIMS, [keys.users, keys.claims], [userId]) as string[];
      const claims: ClaimedCoupon[] = [];
      for (let i = 0; i < flat.length; i += 2) claims.push(claimFromRecord(flat[i]!, flat[i + 1]!));
      if (claims.length > 0) await this.persist(partnerId, templateId, claims);
    }));
  }

  async persistTemplateCoupons(partnerId: string, templateId: string): Promise<void> {
    // The claims hash holds only claims not yet persisted: bounded by the persister's backlog.
    const records = await this.deps.redis.hGetAll(templateClaimKeys(templateId).claims);
    const claims = Object.entries(records).map(([couponId, record]) => claimFromRecord(couponId, record));
    if (claims.length > 0) await this.persist(partnerId, templateId, claims);
  }

  private async persist(partnerId: string, templateId: string, claims: ClaimedCoupon[]): Promise<void> {
    const template = await this.deps.templates.forPartner(partnerId, templateId);
    if (!template) return;
    // As the persister: only replicated claims reach PostgreSQL (claim-replication-fence.ts). Until
    // then their outcome is unknown here too, so the read is refused, not answered without them.
    if (!(await replicatedNow(this.deps.redis, templateId, this.deps.replication))) {
      throw new AppError('SERVICE_UNAVAILABLE', 'Recent claims of this event are not replicated yet; retry shortly.');
    }
    await persistClaims(this.deps, template, claims);
  }
}
