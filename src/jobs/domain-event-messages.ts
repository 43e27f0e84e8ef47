// Domain events on the webhook outbox (issue 19): what each payload holds (written by SQL in the
// transaction of the change: migrations/090_domain_events.sql, or by points/expiring-digest.ts)
// and how it reads in Slack and Discord. Pure: no I/O.

export const DOMAIN_EVENTS = ['event.sold_out', 'coupon.redeemed', 'coupon.redemption_cancelled', 'points.expiring'] as const;
export type DomainEvent = (typeof DOMAIN_EVENTS)[number];

export interface SoldOutPayload {
  event: 'event.sold_out';
  occurredAt: string;
  template: { id: string; name: string; totalQuantity: number };
  /** The template's issued_count when it reached totalQuantity (claims and distributions). */
  issuedCount: number;
  /** Coupon rows of the template in PostgreSQL at that instant: equal to issuedCount unless drift. */
  persistedCount: number;
  /** Issue instant of the first claimed slot (else when a gate opened the event; null if none). */
  firstClaimAt: string | null;
  /** Issue instant of the last claimed slot: when the last coupon was handed out. */
  soldOutAt: string;
  /** soldOutAt − firstClaimAt, in seconds (ms precision); null without a claim. */
  secondsToSellOut: number | null;
  /** When the last coupon reached PostgreSQL (distributed mode: after the persister). */
  persistedAt: string;
}

export interface RedemptionPayload {
  event: 'coupon.redeemed' | 'coupon.redemption_cancelled';
  occurredAt: string;
  coupon: { id: string; templateId: string; userId: string; status: string };
  redemption: { orderId: string; orderAmount: number; discountAmount: number; redeemedAt: string; cancelledAt: string | null };
}

export interface ExpiringUser {
  userId: string;
  pointType: string;
  points: number;
  firstExpiresAt: string;
}

export interface PointsExpiringPayload {
  event: 'points.expiring';
  occurredAt: string;
  /** The partner's notice (points_expiring_notice_days). */
  withinDays: number;
  until: string;
  /** Distinct users with points expiring by `until`. */
  userCount: number;
  /** Their points expiring by `until`, all point types together. */
  points: number;
  /** Per user and point type, soonest first, at most EXPIRING_USERS_LISTED entries. */
  users: ExpiringUser[];
  /** More entries than listed. */
  truncated: boolean;
}

export type DomainEventPayload = SoldOutPayload | RedemptionPayload | PointsExpiringPayload;

export const isDomainEventPayload = (payload: { event: string }): payload is DomainEventPayload =>
  (DOMAIN_EVENTS as readonly string[]).includes(payload.event);

export interface MessageSummary {
  title: string;
  /** One line: Slack's notification text, Discord's content. */
  text: string;
  fields: Array<[string, string]>;
  colour: number;
  /** Extra lines (a list), plain text: each renderer escapes them for its markup. */
  lines?: string[];
}

const count = (n: number) => n.toLocaleString('en-US');
const day = (iso: string) => iso.slice(0, 10);

function sellOutTime(seconds: number | null): string {
  if (seconds === null) return 'no claim';
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

// Discord embed colours: amber (sold out), green (redeemed), grey (cancelled), orange (expiring).
const COLOURS: Record<DomainEvent, number> = {
  'event.sold_out': 0xf59e0b, 'coupon.redeemed': 0x22c55e, 'coupon.redemption_cancelled': 0x6b7280, 'points.expiring': 0xf97316,
};

export function domainEventSummary(payload: DomainEventPayload): MessageSummary {
  const colour = COLOURS[payload.event];
  switch (payload.event) {
    case 'event.sold_out': {
      const { template } = payload;
      const took = payload.secondsToSellOut === null ? '' : ` in ${sellOutTime(payload.secondsToSellOut)}`;
      return {
        title: `Sold out: ${template.name}`,
        text: `${template.name} sold out: ${count(template.totalQuantity)} coupons${took}; ${count(payload.persistedCount)} in PostgreSQL`,
        fields: [
          ['Event', template.id],
          ['Total', count(template.totalQuantity)],
          ['Issued', count(payload.issuedCount)],
          ['Persisted', count(payload.persistedCount)],
          ['First claim to sold out', sellOutTime(payload.secondsToSellOut)],
        ],
        colour,
      };
    }
    case 'coupon.redeemed': {
      const { coupon, redemption } = payload;
      return {
        title: 'Coupon redeemed',
        text: `Coupon ${coupon.id} redeemed by ${coupon.userId} on order ${redemption.orderId}: ` +
          `${count(redemption.discountAmount)} off ${count(redemption.orderAmount)} (minor units)`,
        fields: [
          ['Coupon', coupon.id], ['User', coupon.userId], ['Order', redemption.orderId],
          ['Order amount', count(redemption.orderAmount)], ['Discount', count(redemption.discountAmount)],
        ],
        colour,
      };
    }
    case 'coupon.redemption_cancelled': {
      const { coupon, redemption } = payload;
      return {
        title: 'Redemption cancelled',
        text: `Redemption of coupon ${coupon.id} on order ${redemption.orderId} cancelled; the coupon is ${coupon.status} again`,
        fields: [
          ['Coupon', coupon.id], ['User', coupon.userId], ['Order', redemption.orderId],
          ['Discount given back', count(redemption.discountAmount)], ['Coupon now', coupon.status],
        ],
        colour,
      };
    }
    case 'points.expiring': {
      const shown = payload.users.slice(0, MESSAGE_USERS_SHOWN);
      const more = payload.truncated || payload.users.length > shown.length;
      return {
        title: `Points expiring within ${payload.withinDays} days`,
        text: `${count(payload.userCount)} ${payload.userCount === 1 ? 'user has' : 'users have'} ${count(payload.points)} points expiring by ${day(payload.until)}`,
        fields: [['Users', count(payload.userCount)], ['Points', count(payload.points)], ['By', day(payload.until)]],
        colour,
        lines: [
          ...shown.map((user) => `${user.userId}: ${count(user.points)} ${user.pointType === 'default' ? '' : `${user.pointType} `}points from ${day(user.firstExpiresAt)}`),
          ...(more ? [`… ${count(payload.userCount)} users in all`] : []),
        ],
      };
    }
  }
}

/** Users listed in a Slack or Discord message (the JSON payload lists up to EXPIRING_USERS_LISTED). */
export const MESSAGE_USERS_SHOWN = 10;
/** Users listed in a points.expiring payload; userCount and points cover every user. */
export const EXPIRING_USERS_LISTED = 100;
