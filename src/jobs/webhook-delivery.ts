// Sends one outbox delivery. Runs as a queue task, apart from the job it announces: a slow or
// failing receiver costs the job nothing. A failed attempt is recorded and thrown, so the queue
// retries it with exponential backoff; the last failed attempt marks the delivery FAILED. The
// receiver's address is checked again first and on the connection itself (webhook-address.ts): its
// name may have been re-pointed.
import { fetch } from 'undici';
import type { AppContext } from '../context.ts';
import { AppError, catalogReason } from '../errors.ts';
import { assertAllowedReceiver, receiverDispatcher } from './webhook-address.ts';
import { renderWebhookMessage } from './webhook-messages.ts';
import { findPendingDelivery, recordDeliveryAttempt } from './webhook-repository.ts';
import { SIGNATURE_HEADER, signatureHeader } from './webhook-signature.ts';

const DELIVERY_TIMEOUT_MS = 10_000;

export async function deliverWebhook(ctx: AppContext, deliveryId: string, attempt: { last: boolean }): Promise<void> {
  const delivery = await findPendingDelivery(ctx.db, deliveryId);
  if (!delivery) return;
  let responseStatus: number | null = null;
  let error: string | null = null;
  try {
    await assertAllowedReceiver(ctx.config, delivery.url);
    const body = JSON.stringify(renderWebhookMessage(delivery.kind, delivery.payload));
    const response = await fetch(delivery.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'stampede-webhooks/1',
        'x-stampede-event': delivery.event,
        'x-stampede-delivery': delivery.id,
        // Signed at each attempt, so a retry carries a fresh timestamp.
        [SIGNATURE_HEADER]: signatureHeader(delivery.secret, body, Math.floor(Date.now() / 1000)),
      },
      body,
      // A receiver that redirects is misconfigured; following would send the payload elsewhere.
      redirect: 'manual',
      signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
      dispatcher: receiverDispatcher(ctx.config),
    });
    responseStatus = response.status;
    await response.body?.cancel();
    if (!response.ok) error = `receiver answered HTTP ${response.status}`;
  } catch (failure) {
    error = describe(failure);
    // The receiver by its origin only: Slack and Discord URLs carry their secret in the path.
    if (error.startsWith('could not reach')) ctx.logger.warn({ deliveryId, receiver: receiverOrigin(delivery.url), reason: error }, 'webhook delivery attempt failed');
  }
  const status = error === null ? 'DELIVERED' : attempt.last ? 'FAILED' : 'PENDING';
  await recordDeliveryAttempt(ctx.db, deliveryId, { status, responseStatus, error, now: ctx.clock() });
  if (error !== null) {
    ctx.logger.warn({ deliveryId, receiver: receiverOrigin(delivery.url), error, final: attempt.last }, 'webhook delivery failed');
    if (!attempt.last) throw new Error(error);
  }
}

/**
 * The receiver's scheme, host and port only: Slack and Discord webhook URLs carry their secret in
 * the path (and others in the query or user info), and logs are read by more people than the DB.
 */
export function receiverOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(unparsable URL)';
  }
}

/**
 * What the partner may read about a failed attempt (GET /v1/jobs/{id}/webhook-deliveries): a refused
 * address, a timeout, or the connection error's code; any other error's text stays out of it.
 */
function describe(failure: unknown): string {
  if (failure instanceof AppError) return catalogReason(failure);
  if (failure instanceof Error && (failure.name === 'TimeoutError' || failure.name === 'AbortError')) {
    return `the receiver did not answer within ${DELIVERY_TIMEOUT_MS / 1000} s`;
  }
  // fetch reports a failed connection as "fetch failed" with the reason (ECONNREFUSED, ENOTFOUND, …) as its cause.
  const code = failure instanceof Error ? (failure.cause as { code?: unknown } | undefined)?.code : undefined;
  return typeof code === 'string' && /^[A-Z_]{1,40}$/.test(code) ? `could not reach the receiver (${code})` : 'could not reach the receiver';
}
