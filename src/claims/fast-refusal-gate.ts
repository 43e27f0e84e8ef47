// The distributed claim gate with refusal shortcuts (decision 185): a claim this process knows
// will be refused (sold out, closed, paused, or the user at the per-user limit) is answered here
// without a Redis round trip; every other claim, and every claim with an Idempotency-Key (whose
// first outcome only Redis knows), goes to the Redis gate, which alone issues coupons.
import type { CouponTemplate } from '../coupons/template-repository.ts';
import type { Metrics } from '../infra/metrics.ts';
import { ClaimRefusal, REFUSALS, type AnsweredRefusal, type ClaimGate, type ClaimResult } from './claim-gate.ts';
import type { RefusalFlags } from './refusal-flags.ts';

export interface FlagChannel {
  /** Opens the subscription if it is not open yet (cheap to call on every claim). */
  start(): void;
  /** Tells the other API processes that the user reached the limit of settings version `version`. */
  announceLimited(templateId: string, version: number, userId: string): void;
  close(): Promise<void>;
}

export class FastRefusalGate implements ClaimGate {
  readonly kind: ClaimGate['kind'];

  /**
   * `settled(templateId)` resolves once Redis has sent a settings change's message to every
   * subscriber (a round trip on the connection the change used, ordered after it).
   */
  constructor(
    private readonly gate: ClaimGate,
    /** What this process knows (read by tests and by nothing else outside). */
    readonly flags: RefusalFlags,
    private readonly channel: FlagChannel,
    private readonly settled: (templateId: string) => Promise<unknown>,
    private readonly metrics: Metrics,
  ) {
    this.kind = gate.kind;
  }

  async claim(template: CouponTemplate, newCouponId: () => string, userId: string, idempotencyKey?: string): Promise<ClaimResult> {
    if (idempotencyKey) return this.gate.claim(template, newCouponId, userId, idempotencyKey);
    const known = this.knownRefusal(template, userId);
    if (known !== undefined) {
      this.answeredKnown(template, known);
      return { refusal: known };
    }
    const snapshot = this.flags.snapshot();
    const result = await this.gate.claim(template, newCouponId, userId);
    if ('refusal' in result) this.flags.learn(snapshot, template, userId, result.refusal);
    // The coupon that brings a user to the limit teaches what the gate would answer their next
    // claim, here and, announced with the version the gate judged it by, in the other processes.
    else if (result.issued.reachedLimit) {
      this.flags.learn(snapshot, template, userId, ClaimRefusal.LimitReached);
      if (result.issued.limitVersion !== undefined) this.channel.announceLimited(template.id, result.issued.limitVersion, userId);
    }
    return result;
  }

  knownRefusal(template: CouponTemplate, userId: string): AnsweredRefusal | undefined {
    this.channel.start();
    return this.flags.refusalFor(template, userId);
  }

  answeredKnown(template: CouponTemplate, refusal: AnsweredRefusal): void {
    this.metrics.claimShortcutRefusals.inc(this.metrics.templateLabel(template.id), REFUSALS[refusal].outcome);
  }

  issuedCount(template: CouponTemplate): Promise<number | undefined> {
    return this.gate.issuedCount(template);
  }

  /**
   * The change script publishes the change atomically with it; the round trip after it means that
   * when the change is acknowledged, Redis has already written the un-flag to every subscriber's
   * socket (single Redis, Sentinel; in a cluster it may still be on the cluster bus).
   */
  async applySettings(template: CouponTemplate): Promise<{ readonly refusedIssuedCount?: number }> {
    const applied = await this.gate.applySettings(template);
    await this.settled(template.id);
    return applied;
  }

  async close(): Promise<void> {
    await this.channel.close();
    await this.gate.close?.();
  }
}
