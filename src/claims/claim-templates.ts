// Template metadata for the claim path, cached in-process so a claim costs no PostgreSQL query.
// The gates decide every claim against the settings in force in their own state (the Redis state
// hash, or the in-process event), which a change (claim-settings.ts) updates atomically; this cache
// serves the partner check, the window of a claim before its event is opened, and fallbacks. A
// change made through this process forgets the entry at once; one made through another process is
// seen here within REFRESH_MS (an entry older than that is read again in the background, the cached
// one answering meanwhile). issuedCount here is stale by design, the gate holds the live count.
// Unknown ids are remembered briefly so a flood of bad ids does not reach PostgreSQL either. Both
// maps are bounded LRUs: a flood of ids evicts the least recently used entries one by one, never
// every hot template at once (which sent a live event's claims back to PostgreSQL together).
import { LRUCache } from 'lru-cache';
import type { Queryable } from '../infra/db.ts';
import { findTemplateById, type CouponTemplate } from '../coupons/template-repository.ts';

const MAX_ENTRIES = 10_000;
const MISSING_TTL_MS = 1_000;
/** How old a cached template may be before it is read again (another process may have changed it). */
export const CLAIM_TEMPLATE_REFRESH_MS = 1_000;

interface Entry {
  readonly template: CouponTemplate;
  readonly loadedAt: number;
}

export class ClaimTemplates {
  private readonly found = new LRUCache<string, Entry>({ max: MAX_ENTRIES });
  private readonly missing = new LRUCache<string, true>({ max: MAX_ENTRIES, ttl: MISSING_TTL_MS });
  private readonly loading = new Map<string, Promise<CouponTemplate | undefined>>();
  /** Bumped by forget(): a load that started before it must not put its older read back. */
  private generation = 0;

  constructor(
    private readonly db: Queryable,
    private readonly refreshMs: number = CLAIM_TEMPLATE_REFRESH_MS,
  ) {}

  /** The template if it exists and belongs to the partner (tenancy: otherwise undefined). */
  async forPartner(partnerId: string, templateId: string): Promise<CouponTemplate | undefined> {
    const template = await this.get(templateId);
    return template?.partnerId === partnerId ? template : undefined;
  }

  async get(templateId: string): Promise<CouponTemplate | undefined> {
    const cached = this.cached(templateId);
    if (cached) return cached;
    if (this.missing.get(templateId)) return undefined;
    return this.loadOnce(templateId);
  }

  /**
   * forPartner() without waiting, for the claim route's synchronous path: the cached template (read
   * again in the background when old, as get() does) if it is the partner's; undefined when it is
   * not cached or not the partner's (forPartner() then decides).
   */
  cachedForPartner(partnerId: string, templateId: string): CouponTemplate | undefined {
    const template = this.cached(templateId);
    return template?.partnerId === partnerId ? template : undefined;
  }

  private cached(templateId: string): CouponTemplate | undefined {
    const cached = this.found.get(templateId);
    if (!cached) return undefined;
    if (performance.now() - cached.loadedAt > this.refreshMs) void this.loadOnce(templateId).catch(() => undefined);
    return cached.template;
  }

  /** Drops the entry (this process changed the template): the next claim reads it again. */
  forget(templateId: string): void {
    this.generation += 1;
    this.found.delete(templateId);
    this.missing.delete(templateId);
    this.loading.delete(templateId);
  }

  private loadOnce(templateId: string): Promise<CouponTemplate | undefined> {
    let load = this.loading.get(templateId);
    if (!load) {
      load = this.load(templateId).finally(() => this.loading.delete(templateId));
      this.loading.set(templateId, load);
    }
    return load;
  }

  private async load(templateId: string): Promise<CouponTemplate | undefined> {
    const generation = this.generation;
    const loadedAt = performance.now();
    const template = await findTemplateById(this.db, templateId);
    if (generation !== this.generation) return template;
    if (template) {
      this.found.set(templateId, { template, loadedAt });
      this.missing.delete(templateId);
    } else {
      this.missing.set(templateId, true);
    }
    return template;
  }
}
