// The live view of claim events (GET /v1/coupon-templates/{id}/live, the console's live page).
// One timer per watched event per process, started by its first viewer and stopped when the last
// leaves, measures once a second and writes the same frame to every viewer: a second viewer costs
// one socket write a second, and the claim path only its counter increments (live-counters.ts).
import type { AppContext } from '../context.ts';
import { findTemplateById } from '../coupons/template-repository.ts';
import { AppError } from '../errors.ts';
import { LIVE_OUTCOMES, type EventCounters, type LiveOutcome } from './live-counters.ts';
import { templateClaimKeys } from './redis-keys.ts';

export const LIVE_INTERVAL_MS = 1_000;
/** A comment line now and then keeps proxies and the browser from calling an idle stream dead. */
const HEARTBEAT_EVERY_TICKS = 15;

export type LiveStatus = 'scheduled' | 'open' | 'paused' | 'sold_out' | 'ended';

export interface LiveSnapshot {
  readonly templateId: string;
  readonly at: string;
  readonly status: LiveStatus;
  readonly paused: boolean;
  readonly claimStartsAt: string;
  readonly claimEndsAt: string;
  readonly totalQuantity: number | null;
  /** Issued as the claim gate sees it now (all processes: the gate's state is shared). */
  readonly issued: number;
  readonly remaining: number | null;
  /** Issued coupons already in PostgreSQL. */
  readonly persisted: number;
  /** Claims answered but not yet in PostgreSQL, and the age of the oldest of them (distributed mode). */
  readonly persisterLag: { readonly pending: number; readonly seconds: number };
  /** Claims per second by outcome, as this process answered them over the last interval. */
  readonly claimsPerSecond: Record<LiveOutcome, number>;
  /** 99th percentile of this process' claim-gate latency over the last interval; null without claims. */
  readonly p99Ms: number | null;
}

/** Where an event stands; `paused` wins over the window and the stock only while the window is open. */
export function liveStatus(template: { claimStartsAt: Date; claimEndsAt: Date; totalQuantity: number | null; paused: boolean }, issued: number, now: Date): LiveStatus {
  if (now < template.claimStartsAt) return 'scheduled';
  if (now >= template.claimEndsAt) return 'ended';
  if (template.paused) return 'paused';
  if (template.totalQuantity !== null && issued >= template.totalQuantity) return 'sold_out';
  return 'open';
}

/** One open stream. `send` must not throw; `close` ends the response. */
export interface LiveViewer {
  send(frame: string): void;
  close(): void;
}

interface WatchedEvent {
  readonly templateId: string;
  readonly counters: EventCounters;
  readonly viewers: Set<LiveViewer>;
  readonly timer: NodeJS.Timeout;
  lastFrame: string | undefined;
  lastTickAt: number;
  measuring: boolean;
  ticks: number;
}

export class LiveFeed {
  private readonly events = new Map<string, WatchedEvent>();
  private readonly viewersByPartner = new Map<string, number>();
  private viewerCount = 0;
  private closed = false;

  constructor(private readonly ctx: AppContext) {}

  get viewers(): number {
    return this.viewerCount;
  }

  /** Measuring timers running now: one per watched event. */
  get timers(): number {
    return this.events.size;
  }

  /**
   * Adds a viewer of a template the caller has checked belongs to `partnerId`; refuses beyond the
   * per-partner and total bounds. Returns the function that removes it (idempotent) and the last
   * frame of the event, for the caller to send first.
   */
  join(partnerId: string, templateId: string, viewer: LiveViewer): { leave: () => void; lastFrame: string | undefined } {
    if (this.closed) throw new AppError('SERVICE_UNAVAILABLE');
    const partnerViewers = this.viewersByPartner.get(partnerId) ?? 0;
    if (partnerViewers >= this.ctx.config.liveViewersPerPartner) throw new AppError('LIVE_VIEWERS_LIMIT_REACHED');
    if (this.viewerCount >= this.ctx.config.liveViewersTotal) throw new AppError('LIVE_VIEWERS_BUSY');
    this.viewersByPartner.set(partnerId, partnerViewers + 1);
    this.viewerCount += 1;

    let event = this.events.get(templateId);
    if (!event) {
      event = {
        templateId,
        counters: this.ctx.liveClaims.watch(templateId),
        viewers: new Set(),
        timer: setInterval(() => void this.tick(templateId), LIVE_INTERVAL_MS),
        lastFrame: undefined,
        lastTickAt: performance.now(),
        measuring: false,
        ticks: 0,
      };
      event.timer.unref();
      this.events.set(templateId, event);
      void this.tick(templateId);
    }
    event.viewers.add(viewer);

    let left = false;
    const leave = () => {
      if (left) return;
      left = true;
      this.viewerCount -= 1;
      const remaining = (this.viewersByPartner.get(partnerId) ?? 1) - 1;
      if (remaining === 0) this.viewersByPartner.delete(partnerId);
      else this.viewersByPartner.set(partnerId, remaining);
      const watched = this.events.get(templateId);
      if (!watched) return;
      watched.viewers.delete(viewer);
      if (watched.viewers.size === 0) this.stop(watched);
    };
    return { leave, lastFrame: event.lastFrame };
  }

  /** Ends every stream (graceful shutdown: open streams would otherwise hold the server open). */
  closeAll(): void {
    this.closed = true;
    for (const event of [...this.events.values()]) {
      for (const viewer of [...event.viewers]) viewer.close();
      this.stop(event);
    }
  }

  private stop(event: WatchedEvent): void {
    clearInterval(event.timer);
    this.ctx.liveClaims.unwatch(event.templateId);
    this.events.delete(event.templateId);
  }

  private async tick(templateId: string): Promise<void> {
    const event = this.events.get(templateId);
    if (!event) return;
    event.ticks += 1;
    // A measurement still running (a slow database) is not stacked on: its viewers keep the last
    // frame meanwhile, and a heartbeat.
    if (event.measuring) {
      for (const viewer of event.viewers) viewer.send(': heartbeat\n\n');
      return;
    }
    event.measuring = true;
    try {
      const now = performance.now();
      const elapsedSeconds = Math.max(0.001, (now - event.lastTickAt) / 1000);
      event.lastTickAt = now;
      // Taken before the awaits so no claim falls between two intervals.
      const { counts, p99Ms } = event.counters.take();
      const claimsPerSecond = Object.fromEntries(LIVE_OUTCOMES.map((outcome) => [outcome, Math.round((counts[outcome] / elapsedSeconds) * 10) / 10])) as Record<LiveOutcome, number>;
      const snapshot = await this.measure(templateId, claimsPerSecond, p99Ms);
      if (!this.events.has(templateId)) return;
      if (snapshot) {
        event.lastFrame = `event: stats\ndata: ${JSON.stringify(snapshot)}\n\n`;
        for (const viewer of event.viewers) viewer.send(event.lastFrame);
      }
      if (!snapshot || event.ticks % HEARTBEAT_EVERY_TICKS === 0) {
        for (const viewer of event.viewers) viewer.send(': heartbeat\n\n');
      }
    } catch (error) {
      this.ctx.logger.warn({ err: error, templateId }, 'live feed: measuring an event failed');
      for (const viewer of event.viewers) viewer.send(': heartbeat\n\n');
    } finally {
      event.measuring = false;
    }
  }

  private async measure(templateId: string, claimsPerSecond: Record<LiveOutcome, number>, p99Ms: number | null): Promise<LiveSnapshot | undefined> {
    const template = await findTemplateById(this.ctx.db, templateId);
    if (!template) return undefined;
    const [live, persisterLag] = await Promise.all([this.ctx.claimGate.issuedCount(template), this.persisterLag(templateId)]);
    const persisted = template.issuedCount;
    const issued = Math.max(live ?? persisted, persisted);
    const paused = template.paused;
    return {
      templateId,
      at: this.ctx.clock().toISOString(),
      status: liveStatus({ ...template, paused }, issued, this.ctx.clock()),
      paused,
      claimStartsAt: template.claimStartsAt.toISOString(),
      claimEndsAt: template.claimEndsAt.toISOString(),
      totalQuantity: template.totalQuantity,
      issued,
      remaining: template.totalQuantity === null ? null : Math.max(0, template.totalQuantity - issued),
      persisted,
      persisterLag: persisterLag ?? { pending: Math.max(0, issued - persisted), seconds: 0 },
      claimsPerSecond,
      p99Ms: p99Ms === null ? null : Math.round(p99Ms * 100) / 100,
    };
  }

  /** Distributed mode: the template's stream (claims not yet persisted) and its oldest entry's age. */
  private async persisterLag(templateId: string): Promise<{ pending: number; seconds: number } | undefined> {
    const redis = this.ctx.redis;
    if (!redis) return undefined;
    const { stream } = templateClaimKeys(templateId);
    const [pending, oldest, [seconds, micros]] = await Promise.all([redis.xLen(stream), redis.xRange(stream, '-', '+', { COUNT: 1 }), redis.time()]);
    // Stream ids start with the Redis clock (ms) at XADD: host clock skew does not become lag.
    const nowMs = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    const oldestMs = oldest?.[0] ? Number(oldest[0].id.split('-')[0]) : nowMs;
    return { pending, seconds: Math.max(0, nowMs - oldestMs) / 1000 };
  }
}
