// Webhook signatures, Stripe's scheme: `Stampede-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
// "<t>.<raw body>">`, keyed by the webhook's secret (shown once at registration). The timestamp
// is signed too, so a receiver that refuses old ones (5 minutes, say) refuses replays.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'Stampede-Signature';

export const newWebhookSecret = (): string => `whsec_${randomBytes(32).toString('base64url')}`;

export function signatureHeader(secret: string, body: string, unixSeconds: number): string {
  return `t=${unixSeconds},v1=${hmac(secret, unixSeconds, body)}`;
}

/** What a receiver does (docs/bulk-jobs.md has the same in a snippet): true when a v1 signature matches and is fresh. */
export function verifySignature(secret: string, body: string, header: string, nowSeconds: number, toleranceSeconds = 300): boolean {
  const parts = header.split(',').map((part) => part.split('=', 2) as [string, string | undefined]);
  const t = Number(parts.find(([name]) => name === 't')?.[1]);
  if (!Number.isSafeInteger(t) || Math.abs(nowSeconds - t) > toleranceSeconds) return false;
  const expected = Buffer.from(hmac(secret, t, body), 'hex');
  return parts.some(([name, value]) => name === 'v1' && value !== undefined && value.length === expected.length * 2
    && timingSafeEqual(Buffer.from(value, 'hex'), expected));
}

const hmac = (secret: string, unixSeconds: number, body: string) => createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex');
