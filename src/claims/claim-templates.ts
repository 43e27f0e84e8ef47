// Template metadata for the claim path, cached in-process so a claim costs no PostgreSQL query.
// What a claim reads of a template (partner, quantity, limit, window, validity) never changes
// after creation (there is no template update); issuedCount here is stale by design, the gate
// holds the live count. Unknown ids are remembered briefly so a flood of bad ids does not reach
// PostgreSQL either. Both maps are bounded LRUs: a flood of ids evicts the least recently used
// entries one by one, never every hot template at once (which sent a live event's claims back to
// PostgreSQL together).
import { LRUCache } from 'lru-cache';
import type { Queryable } from '../infra/db.ts';
import { findTemplateById, type CouponTemplate } from '../coupons/template-repository.ts';

const MAX_ENTRIES = 10_000;
const MISSING_TTL_MS = 1_000;

export class ClaimTemplates {
  private readonly found = new LRUCache<string, CouponTemplate>({ max: MAX_ENTRIES });
  private readonly missing = new LRUCache<string, true>({ max: MAX_ENTRIES, ttl: MISSING_TTL_MS });
  private readonly loading = new Map<string, Promise<CouponTemplate | undefined>>();

  constructor(private readonly db: Queryable) {}

  /** The template if it exists and belongs to the partner (tenancy: otherwise undefined). */
  async forPartner(partnerId: string, templateId: string): Promise<CouponTemplate | undefined> {
    const template = await this.get(templateId);
    return template?.partnerId === partnerId ? template : undefined;
  }

  async get(templateId: string): Promise<CouponTemplate | undefined> {
    const cached = this.found.get(templateId);
    if (cached) return cached;
    if (this.missing.get(templateId)) return undefined;
    let load = this.loading.get(templateId);
    if (!load) {
      load = this.load(templateId).finally(() => this.loading.delete(templateId));
      this.loading.set(templateId, load);
    }
    return load;
  }

  private async load(templateId: string): Promise<CouponTemplate | undefined> {
    const template = await findTemplateById(this.db, templateId);
    if (template) {
      this.found.set(templateId, template);
      this.missing.delete(templateId);
    } else {
      this.missing.set(templateId, true);
    }
    return template;
  }
}
