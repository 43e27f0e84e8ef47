// The refusal-flags channel (decision 185): claim-5.lua publishes an event's sell-out,
// change-settings-2.lua every change it applies, and each API process, once per event-loop turn,
// the users its 201s brought to the per-user limit (decision 255), on one plain Pub/Sub channel;
// each API process listens on a dedicated connection (`duplicate()` of its client: a
// RedisClient, a RedisCluster, whose plain Pub/Sub reaches any node through the cluster bus, or a
// RedisSentinel, which follows the primary) and hands the messages to its RefusalFlags. Any sign
// the connection may have missed a message (an error, a reconnect, a node of the subscriber's
// cluster failing) forgets every flag; shortcuts come back only once a probe this process
// published after that came back through the subscription.
import { randomUUID } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import type { Logger } from '../infra/logger.ts';
import type { Redis } from '../infra/redis.ts';
import { ClaimRefusal } from './claim-gate.ts';
import type { EventRefusal, FlagMessage, RefusalFlags } from './refusal-flags.ts';

/** Named in claim-5.lua and change-settings-2.lua too (refusal-flags.unit.test.ts checks). */
export const REFUSAL_FLAGS_CHANNEL = 'stampede:claims:refusal-flags';
const PROBE_INTERVAL_MS = 200;
/** Users at the limit waiting for the turn's announcement; beyond, they are not announced (only a shortcut is lost). */
const MAX_PENDING_LIMITED = 10_000;
/** Users per announcement message (a user id is at most 128 characters). */
const LIMITED_PER_MESSAGE = 500;
const RESTART_DELAY_MS = 1_000;
// Any of these on the subscriber (or a node of its cluster) means messages may have been missed.
const LOSS_EVENTS = ['error', 'end', 'reconnecting', 'node-error', 'node-reconnecting', 'node-disconnect', 'client-error'];
const READY_EVENTS = ['ready', 'node-ready'];
const EVENT_REFUSALS: ReadonlyMap<string, EventRefusal | 0> = new Map<string, EventRefusal | 0>([
  ['0', 0], [String(ClaimRefusal.SoldOut), ClaimRefusal.SoldOut], [String(ClaimRefusal.Closed), ClaimRefusal.Closed], [String(ClaimRefusal.Paused), ClaimRefusal.Paused],
]);

/**
 * Parses a message: "s <stateKey> <version>" (sold out by the claim just issued),
 * "c <stateKey> <version> <refusal>" (settings applied; refusal 0, -3, -5 or -7) or
 * "u <sender> {tpl:<id>} <version> <userId>…" (users at the limit of that settings version; user
 * ids have no spaces). undefined: not one.
 */
export function parseFlagMessage(message: string): FlagMessage | undefined {
  const parts = message.split(' ');
  const [kind, stateKey, versionText, refusalText] = parts[0] === 'u' ? ['u', parts[2], parts[3]] : parts;
  const templateId = /\{tpl:([^}]+)\}/.exec(stateKey ?? '')?.[1];
  const version = Number(versionText);
  if (templateId === undefined || !Number.isSafeInteger(version)) return undefined;
  if (kind === 's') return { kind: 'sold-out', templateId, version };
  if (kind === 'u') return parts.length > 4 ? { kind: 'limited', templateId, version, userIds: parts.slice(4) } : undefined;
  const refusal = EVENT_REFUSALS.get(refusalText ?? '');
  if (kind === 'c' && refusal !== undefined) return { kind: 'changed', templateId, version, refusal };
  return undefined;
}

export class RefusalFlagSubscriber {
  private subscriber: Redis | undefined;
  private readonly probeId = randomUUID();
  /** This process's own announcements come back through its subscription: skipped by this prefix. */
  private readonly ownAnnouncement = `u ${this.probeId} `;
  /** Per "{tpl:<id>} <version>", the users to announce at the end of the turn. */
  private readonly pendingLimited = new Map<string, string[]>();
  private pendingLimitedCount = 0;
  private probesSent = 0;
  /** Only a probe numbered above this proves the current subscription. */
  private probesBeforeLoss = 0;
  private probeTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** After a failed start, the next one waits until then (performance.now()). */
  private retryAt = 0;

  constructor(
    private readonly redis: Redis,
    private readonly flags: RefusalFlags,
    private readonly logger: Logger,
    private readonly onSubscription: (subscribed: boolean) => void = () => undefined,
  ) {}

  /** Opens the subscription (once; called by the first claim, so processes that never claim hold no connection). */
  start(): void {
    if (this.subscriber || this.closed || performance.now() < this.retryAt) return;
    const subscriber = this.redis.duplicate();
    this.subscriber = subscriber;
    const events = subscriber as unknown as EventEmitter;
    for (const event of LOSS_EVENTS) events.on(event, (error?: unknown) => { if (this.subscriber === subscriber) this.lose(event, error); });
    for (const event of READY_EVENTS) events.on(event, () => { if (this.subscriber === subscriber) this.probeSoon(); });
    void (async () => {
      await subscriber.connect();
      await subscriber.subscribe(REFUSAL_FLAGS_CHANNEL, (message) => this.receive(message));
      if (this.subscriber === subscriber) this.confirm();
    })().catch((error: unknown) => {
      // Start again from a new connection at a later claim.
      if (this.subscriber !== subscriber) return;
      this.lose('subscribe', error);
      this.subscriber = undefined;
      this.retryAt = performance.now() + RESTART_DELAY_MS;
      if (subscriber.isOpen) subscriber.destroy();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.probeTimer);
    this.flags.loseSubscription();
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    if (subscriber?.isOpen) await subscriber.close().catch(() => { if (subscriber.isOpen) subscriber.destroy(); });
  }

  /**
   * Tells the other API processes that a 201 of this process brought the user to the per-user
   * limit of settings version `version`, so their next claim is refused there without a Redis
   * call too. Sent once per event-loop turn for all such users; a lost message only costs a
   * shortcut.
   */
  announceLimited(templateId: string, version: number, userId: string): void {
    if (this.closed || this.pendingLimitedCount >= MAX_PENDING_LIMITED) return;
    if (this.pendingLimitedCount === 0) setImmediate(() => this.flushLimited());
    const key = `{tpl:${templateId}} ${version}`;
    const users = this.pendingLimited.get(key);
    if (users) users.push(userId);
    else this.pendingLimited.set(key, [userId]);
    this.pendingLimitedCount += 1;
  }

  private flushLimited(): void {
    for (const [key, users] of this.pendingLimited) {
      for (let start = 0; start < users.length; start += LIMITED_PER_MESSAGE) {
        const message = `${this.ownAnnouncement}${key} ${users.slice(start, start + LIMITED_PER_MESSAGE).join(' ')}`;
        void this.redis.publish(REFUSAL_FLAGS_CHANNEL, message).catch(() => undefined);
      }
    }
    this.pendingLimited.clear();
    this.pendingLimitedCount = 0;
  }

  private receive(message: string): void {
    if (message.startsWith(this.ownAnnouncement)) return;
    if (message.startsWith('p ')) {
      const [, id, number] = message.split(' ');
      if (id === this.probeId && Number(number) > this.probesBeforeLoss && !this.flags.isSubscribed) this.confirm();
      return;
    }
    const parsed = parseFlagMessage(message);
    if (parsed) this.flags.onMessage(parsed);
  }

  private confirm(): void {
    if (this.closed) return;
    clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
    if (!this.flags.isSubscribed) {
      this.flags.confirmSubscription();
      this.onSubscription(true);
    }
  }

  private lose(event: string, error: unknown): void {
    if (this.closed) return;
    this.probesBeforeLoss = this.probesSent;
    if (this.flags.isSubscribed) {
      this.logger.warn({ err: error, event }, 'refusal flags: subscription interrupted; every claim asks the gate until it is back');
      this.onSubscription(false);
    }
    this.flags.loseSubscription();
    this.probeSoon();
  }

  /** Publishes probes until one comes back through the subscription (node-redis resubscribes after a reconnect). */
  private probeSoon(): void {
    if (this.closed || this.probeTimer || !this.subscriber || this.flags.isSubscribed) return;
    this.probeTimer = setTimeout(() => {
      this.probeTimer = undefined;
      if (this.closed || this.flags.isSubscribed) return;
      this.probesSent += 1;
      void this.redis.publish(REFUSAL_FLAGS_CHANNEL, `p ${this.probeId} ${this.probesSent}`).catch(() => undefined);
      this.probeSoon();
    }, PROBE_INTERVAL_MS);
    this.probeTimer.unref();
  }
}
