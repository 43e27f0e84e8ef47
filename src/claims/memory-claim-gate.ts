// The embedded claim gate: counters in this process (loaded from PostgreSQL on a template's first
// claim) and group commit. A claim is decided at once in memory, then waits for the next flush:
// every claim gathered while the previous flush was committing (or for `lingerMs` when idle) is
// inserted by one statement (its own transaction) per template, and only after it committed are
// they all answered. No 201 goes out for a row that is not committed. One process must own the counters (embedded mode
// runs one API process); PostgreSQL's constraints refuse anything a second owner would over-issue.
import { AppError } from '../errors.ts';
import type { CouponTemplate } from '../coupons/template-repository.ts';
import { isRetryableConflict, withRetry, type Db } from '../infra/db.ts';
import type { Logger } from '../infra/logger.ts';
import type { Metrics } from '../infra/metrics.ts';
import type { ClaimGate, ClaimResult, IssuedClaim } from './claim-gate.ts';
import { claimRefusal } from './claim-rules.ts';
import { insertClaimedCoupons, readGateSnapshot, type ClaimedCoupon, type GateSnapshot } from './claim-repository.ts';

export interface GroupCommitOptions {
  /** How long an idle gate waits for company before flushing a first claim. */
  readonly lingerMs: number;
  /** Most claims in one flush; more wait for the next one. */
  readonly maxBatch: number;
}

interface Counters {
  readonly template: CouponTemplate;
  issued: number;
  slot: number;
  readonly held: Map<string, number>;
}

interface Waiting {
  readonly template: CouponTemplate;
  readonly coupon: ClaimedCoupon;
  readonly issued: IssuedClaim;
  readonly resolve: (claim: IssuedClaim) => void;
  readonly reject: (error: Error) => void;
}

export class MemoryClaimGate implements ClaimGate {
  readonly kind = 'memory';
  private readonly counters = new Map<string, Counters>();
  private readonly loading = new Map<string, Promise<void>>();
  private queue: Waiting[] = [];
  private flushing = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: Db,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
    private readonly clock: () => Date,
    private readonly options: GroupCommitOptions,
  ) {}

  async claim(template: CouponTemplate, couponId: string, userId: string): Promise<ClaimResult> {
    let counters = this.counters.get(template.id);
    // Re-read after loading: a resync may have replaced the counters in the meantime.
    while (!counters) {
      await this.load(template);
      counters = this.counters.get(template.id);
    }
    // From here to the enqueue nothing awaits: the decision and the reservation are one step.
    const now = this.clock();
    const held = counters.held.get(userId) ?? 0;
    const refusal = claimRefusal({
      totalQuantity: template.totalQuantity,
      perUserLimit: template.perUserLimit,
      claimStartsAt: template.claimStartsAt.getTime(),
      claimEndsAt: template.claimEndsAt.getTime(),
      issued: counters.issued,
    }, held, now.getTime());
    if (refusal !== undefined) return { refusal };
    counters.issued += 1;
    counters.slot += 1;
    counters.held.set(userId, held + 1);
    const issued: IssuedClaim = { slot: counters.slot, seq: held + 1, issuedAt: now, issuedCount: counters.issued };
    const coupon: ClaimedCoupon = { id: couponId, userId, slot: issued.slot, seq: issued.seq, issuedAt: now };
    return { issued: await new Promise<IssuedClaim>((resolve, reject) => this.enqueue({ template, coupon, issued, resolve, reject })) };
  }

  async issuedCount(template: CouponTemplate): Promise<number | undefined> {
    return this.counters.get(template.id)?.issued;
  }

  private load(template: CouponTemplate): Promise<void> {
    let loading = this.loading.get(template.id);
    if (!loading) {
      loading = readGateSnapshot(this.db, template.id).then((snapshot) => {
        this.counters.set(template.id, countersFrom(template, snapshot));
      }).finally(() => this.loading.delete(template.id));
      this.loading.set(template.id, loading);
    }
    return loading;
  }

  private enqueue(waiting: Waiting): void {
    this.queue.push(waiting);
    if (this.flushing || this.timer) return;
    if (this.queue.length >= this.options.maxBatch) void this.flush();
    else this.timer = setTimeout(() => void this.flush(), this.options.lingerMs);
  }

  private async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.flushing = true;
    try {
      const batch = this.queue.splice(0, this.options.maxBatch);
      const byTemplate = new Map<string, Waiting[]>();
      for (const waiting of batch) {
        const group = byTemplate.get(waiting.template.id);
        if (group) group.push(waiting);
        else byTemplate.set(waiting.template.id, [waiting]);
      }
      await Promise.all([...byTemplate.values()].map((group) => this.commit(group)));
    } finally {
      this.flushing = false;
      // Claims that arrived during the commit have waited long enough: flush them now.
      if (this.queue.length > 0) void this.flush();
    }
  }

  private async commit(group: Waiting[]): Promise<void> {
    const template = group[0]!.template;
    const started = performance.now();
    let inserted: Set<string>;
    try {
      // One statement (INSERT + issued_count), atomic on its own: the group's one commit.
      inserted = await withRetry(() => insertClaimedCoupons(this.db, template, group.map((w) => w.coupon)));
    } catch (error) {
      this.logger.error({ err: error, templateId: template.id, claims: group.length }, 'claim group commit failed');
      const unavailable = new AppError('SERVICE_UNAVAILABLE');
      for (const waiting of group) waiting.reject(unavailable);
      await this.resync(template, isRetryableConflict(error) ? 'retries exhausted' : 'commit failed');
      return;
    }
    this.metrics.claimBatchSize.observe({ gate: this.kind }, group.length);
    this.metrics.claimBatchCommitDuration.observe({ gate: this.kind }, (performance.now() - started) / 1000);
    let refused = 0;
    for (const waiting of group) {
      if (inserted.has(waiting.coupon.id)) waiting.resolve(waiting.issued);
      else {
        refused += 1;
        waiting.reject(new AppError('SERVICE_UNAVAILABLE', 'The claim conflicted with a coupon already in the database; retry.'));
      }
    }
    // A slot or (user, seq) already taken means the counters drifted from PostgreSQL.
    if (refused > 0) await this.resync(template, `${refused} claims refused by database constraints`);
  }

  /**
   * Rebuilds a template's counters from PostgreSQL plus the claims still queued. It runs inside a
   * flush, so no other commit is in flight and the result is exact.
   */
  private async resync(template: CouponTemplate, reason: string): Promise<void> {
    try {
      const snapshot = await readGateSnapshot(this.db, template.id);
      const counters = countersFrom(template, snapshot);
      for (const waiting of this.queue) {
        if (waiting.template.id !== template.id) continue;
        counters.issued += 1;
        counters.slot = Math.max(counters.slot, waiting.coupon.slot);
        counters.held.set(waiting.coupon.userId, (counters.held.get(waiting.coupon.userId) ?? 0) + 1);
      }
      this.counters.set(template.id, counters);
      this.logger.warn({ templateId: template.id, reason, issued: counters.issued }, 'claim counters resynchronised from PostgreSQL');
    } catch (error) {
      // Forget the counters: the next claim loads them afresh.
      this.counters.delete(template.id);
      this.logger.error({ err: error, templateId: template.id }, 'claim counters could not be resynchronised');
    }
  }
}

function countersFrom(template: CouponTemplate, snapshot: GateSnapshot): Counters {
  const held = new Map<string, number>();
  for (const [userId, couponIds] of snapshot.holdings) held.set(userId, couponIds.length);
  return { template, issued: snapshot.issuedCount, slot: snapshot.maxSlot, held };
}
