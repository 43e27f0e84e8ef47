// What this process knows about refusals without asking Redis (distributed mode; decision 185).
// Once an event is sold out, closed or paused, or a user has reached the per-user limit, a claim
// can be refused here. A flag only ever shortcuts a refusal: it never admits a claim, and every
// doubt drops it so the atomic gate (claim-5.lua) decides. Flags come from the pub/sub channel
// (refusal-flag-subscriber.ts: the claim script announces a sell-out, the settings script every
// change, and every API process the users its 201s brought to the limit, decision 255) and from
// the gate's own refusals, which teach only if no message arrived while the claim was in flight (a
// change may have overtaken it). Users announced by another process carry the settings version
// their limit was judged by: an announcement older than a change seen here is ignored, and one
// for an event this process holds no record of (it neither claims nor saw it change) is not
// kept. A flag is dropped by any change of the event (the change script publishes it atomically
// with the change), by a newer settingsVersion on the template a claim carries, by losing the
// subscription, and after its TTL (1 s) in any case.
import { LRUCache } from 'lru-cache';
import type { CouponTemplate } from '../coupons/template-repository.ts';
import { ClaimRefusal, type AnsweredRefusal } from './claim-gate.ts';

/** How long a shortcut is trusted without a new confirmation by default (STAMPEDE_CLAIM_REFUSAL_FLAG_TTL_MS): the bound if an un-flag is ever lost. */
export const SHORTCUT_TTL_MS = 1_000;
const MAX_EVENTS = 10_000;
/** Users remembered at their limit, per event and in total. */
export const MAX_LIMITED_USERS_PER_EVENT = 10_000;
export const MAX_LIMITED_USERS = 100_000;

export type EventRefusal = ClaimRefusal.SoldOut | ClaimRefusal.Closed | ClaimRefusal.Paused;

const EVENT_REFUSALS: ReadonlySet<number> = new Set([ClaimRefusal.SoldOut, ClaimRefusal.Closed, ClaimRefusal.Paused]);

interface Shortcut {
  /** The settings version it was seen under: a claim carrying a newer template does not use it. */
  readonly version: number;
  /** performance.now() after which it is not trusted. */
  readonly until: number;
}

interface EventRecord {
  flag?: Shortcut & { readonly refusal: EventRefusal };
  limited?: LRUCache<string, Shortcut>;
  /** The newest settings version a change message announced (0: none seen). */
  changedVersion: number;
}

/** A message of the refusal-flags channel, parsed (refusal-flag-subscriber.ts). */
export type FlagMessage =
  | { readonly kind: 'sold-out'; readonly templateId: string; readonly version: number }
  /** A settings change was applied; `refusal` is what it makes every claim answer (0: none). */
  | { readonly kind: 'changed'; readonly templateId: string; readonly version: number; readonly refusal: EventRefusal | 0 }
  /** Users another process's 201s brought to the per-user limit of settings version `version`. */
  | { readonly kind: 'limited'; readonly templateId: string; readonly version: number; readonly userIds: readonly string[] };

export class RefusalFlags {
  private readonly events = new LRUCache<string, EventRecord>({
    max: MAX_EVENTS,
    dispose: (record) => { this.limitedUsers -= record.limited?.size ?? 0; },
  });
  private limitedUsers = 0;
  private subscribed = false;
  /** Bumped by every message and every change of the subscription: a gate answer overtaken by one teaches nothing. */
  private generation = 0;

  constructor(
    private readonly ttlMs: number = SHORTCUT_TTL_MS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Whether the subscription is confirmed: without it nothing is shortcut (and nothing is learnt). */
  get isSubscribed(): boolean {
    return this.subscribed;
  }

  /** The refusal this process may answer for the claim without asking the gate, if any. */
  refusalFor(template: CouponTemplate, userId: string): AnsweredRefusal | undefined {
    if (!this.subscribed) return undefined;
    const record = this.events.get(template.id);
    if (!record) return undefined;
    const now = this.now();
    const { flag, limited } = record;
    if (flag) {
      if (this.trusted(flag, template, now)) return flag.refusal;
      record.flag = undefined;
    }
    const user = limited?.get(userId);
    if (user) {
      if (this.trusted(user, template, now)) return ClaimRefusal.LimitReached;
      limited!.delete(userId);
    }
    return undefined;
  }

  /** Taken before a claim is sent to the gate; learn() compares it with the one after. */
  snapshot(): number {
    return this.generation;
  }

  /** Remembers a refusal the gate answered, unless a message or a change of subscription came in meanwhile. */
  learn(snapshot: number, template: CouponTemplate, userId: string, refusal: AnsweredRefusal): void {
    if (!this.subscribed || snapshot !== this.generation || this.ttlMs === 0) return;
    if (EVENT_REFUSALS.has(refusal)) this.flag(template.id, refusal as EventRefusal, template.settingsVersion);
    else if (refusal === ClaimRefusal.LimitReached) this.limit(this.recordOf(template.id), userId, template.settingsVersion);
  }

  onMessage(message: FlagMessage): void {
    // Users at the limit only add refusals: a gate answer in flight is not made wrong by them.
    if (message.kind === 'limited') return this.limitedElsewhere(message.templateId, message.version, message.userIds);
    this.generation += 1;
    if (message.kind === 'changed') {
      // Whatever changed (a resume, more stock, a later end, a higher per-user limit) may admit claims.
      const record = this.recordOf(message.templateId);
      record.flag = undefined;
      this.forgetLimited(record);
      record.changedVersion = Math.max(record.changedVersion, message.version);
      if (message.refusal !== 0) this.flag(message.templateId, message.refusal, message.version);
    } else {
      this.flag(message.templateId, ClaimRefusal.SoldOut, message.version);
    }
  }

  /** The subscription is confirmed: messages published from now on reach this process. */
  confirmSubscription(): void {
    this.generation += 1;
    this.subscribed = true;
  }

  /** The subscription may have missed messages: forget everything, ask the gate until confirmed again. */
  loseSubscription(): void {
    this.generation += 1;
    this.subscribed = false;
    this.events.clear();
    this.limitedUsers = 0;
  }

  /** Users remembered at their limit, over all events (bounded by MAX_LIMITED_USERS). */
  get limitedUserCount(): number {
    return this.limitedUsers;
  }

  private trusted(shortcut: Shortcut, template: CouponTemplate, now: number): boolean {
    return now < shortcut.until && template.settingsVersion <= shortcut.version;
  }

  private flag(templateId: string, refusal: EventRefusal, version: number): void {
    if (!this.subscribed) return;
    this.recordOf(templateId).flag = { refusal, version, until: this.now() + this.ttlMs };
  }

  private limit(record: EventRecord, userId: string, version: number): void {
    let limited = record.limited;
    if (!limited) {
      limited = new LRUCache<string, Shortcut>({
        max: MAX_LIMITED_USERS_PER_EVENT,
        // Evicted or deleted users; a record dropped whole subtracts its size itself.
        dispose: (_value, _key, reason) => { if (reason !== 'set' && record.limited === limited) this.limitedUsers -= 1; },
      });
      record.limited = limited;
    }
    const known = limited.has(userId);
    if (!known && limited.size < MAX_LIMITED_USERS_PER_EVENT && this.limitedUsers >= MAX_LIMITED_USERS) return;
    limited.set(userId, { version, until: this.now() + this.ttlMs });
    if (!known) this.limitedUsers += 1;
  }

  private limitedElsewhere(templateId: string, version: number, userIds: readonly string[]): void {
    if (!this.subscribed || this.ttlMs === 0) return;
    const record = this.events.get(templateId);
    if (!record || version < record.changedVersion) return;
    for (const userId of userIds) this.limit(record, userId, version);
  }

  private forgetLimited(record: EventRecord): void {
    if (!record.limited) return;
    this.limitedUsers -= record.limited.size;
    record.limited = undefined;
  }

  private recordOf(templateId: string): EventRecord {
    let record = this.events.get(templateId);
    if (!record) {
      record = { changedVersion: 0 };
      this.events.set(templateId, record);
    }
    return record;
  }
}
