// Prometheus metrics. One registry per process context (tests build several apps in one
// process). Label sets are bounded: routes are route patterns, never raw URLs; nothing is
// labelled by user; template ids pass through `templateLabel`, which caps how many distinct
// templates one process reports (the rest are summed under "other").
import client from 'prom-client';
import { HotCounter, HotHistogram } from './hot-metrics.ts';

// Sub-millisecond to multi-second: a flash-sale claim answers in ~1 ms, a bulk upload in seconds.
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const BATCH_BUCKETS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000];
export const MAX_TEMPLATE_LABELS = 50;

const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'];
/** stampede_http_request_duration_seconds' status_class: '2xx' for 201, one string per class, not one built per request. */
export const statusClass = (status: number): string => STATUS_CLASSES[Math.floor(status / 100) - 1] ?? `${Math.floor(status / 100)}xx`;

export function createMetrics() {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'stampede_' });
  const registers = [registry];
  const templateLabels = new Set<string>();
  // Claim backlog is measured at scrape time by any process that can read the claim streams
  // (claims/claim-backlog.ts), so it keeps growing when the persister is stopped or stuck. One
  // measurement serves both gauges of a scrape.
  let measureBacklog: (() => Promise<void>) | undefined;
  let measuring: Promise<void> | undefined;
  // A failed measurement keeps the previous values: a scrape must not fail because of it.
  const collectBacklog = () => (measuring ??= (measureBacklog?.() ?? Promise.resolve()).catch(() => undefined).finally(() => { measuring = undefined; }));
  return {
    registry,
    /** Installs the scrape-time measurement of stampede_claim_stream_length and _consumer_lag_seconds. */
    measureClaimBacklogOnScrape(measure: () => Promise<void>): void {
      measureBacklog = measure;
    },
    /** Bounded label for a template id: the first MAX_TEMPLATE_LABELS seen, then "other". */
    templateLabel(templateId: string): string {
      if (templateLabels.has(templateId)) return templateId;
      if (templateLabels.size >= MAX_TEMPLATE_LABELS) return 'other';
      templateLabels.add(templateId);
      return templateId;
    },
    // Counted on every request or claim: hot metrics (observe(value, ...labelValues), inc(...labelValues)).
    httpRequestDuration: new HotHistogram({
      name: 'stampede_http_request_duration_seconds',
      help: 'HTTP request latency by route pattern, method and status class.',
      labelNames: ['route', 'method', 'status_class'] as const,
      registers,
    }, LATENCY_BUCKETS),
    claims: new HotCounter({
      name: 'stampede_claims_total',
      help: 'Claim answers by template and outcome (issued, sold_out, limit_reached, not_open, closed, not_found).',
      labelNames: ['template', 'outcome'] as const,
      registers,
    }),
    claimGateDuration: new HotHistogram({
      name: 'stampede_claim_gate_duration_seconds',
      help: 'Time the claim gate (Redis script or in-process counter + group commit) took to decide a claim.',
      labelNames: ['gate'] as const,
      registers,
    }, LATENCY_BUCKETS),
    claimRemaining: new client.Gauge({
      name: 'stampede_claim_remaining',
      help: 'Coupons left in a limited event, as the gate sees them.',
      labelNames: ['template'] as const,
      // Across cluster processes the lowest value is the freshest one (stock only goes down).
      aggregator: 'min',
      registers,
    }),
    claimStreamLength: new client.Gauge({
      name: 'stampede_claim_stream_length',
      help: 'Entries in a template claim stream not yet acknowledged by a worker.',
      labelNames: ['template'] as const,
      aggregator: 'max',
      collect: collectBacklog,
      registers,
    }),
    claimConsumerLag: new client.Gauge({
      name: 'stampede_claim_consumer_lag_seconds',
      help: 'Age of the oldest claim not yet persisted to PostgreSQL.',
      labelNames: ['template'] as const,
      aggregator: 'max',
      collect: collectBacklog,
      registers,
    }),
    claimBatchSize: new client.Histogram({
      name: 'stampede_claim_batch_size',
      help: 'Claims persisted per PostgreSQL transaction.',
      labelNames: ['gate'] as const,
      buckets: BATCH_BUCKETS,
      registers,
    }),
    claimBatchCommitDuration: new client.Histogram({
      name: 'stampede_claim_batch_commit_seconds',
      help: 'Time to insert and commit one batch of claims.',
      labelNames: ['gate'] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    claimPersistDeferred: new client.Counter({
      name: 'stampede_claim_persist_deferred_total',
      help: 'Claim batches the persister left pending because fewer replicas than STAMPEDE_REDIS_MIN_REPLICAS held them yet.',
      registers,
    }),
    claimsRefusedByDatabase: new client.Counter({
      name: 'stampede_claims_refused_by_database_total',
      help: 'Claims the gate issued that PostgreSQL refused (slot or user sequence taken, or over-issue): the gate lost or drifted from its state.',
      labelNames: ['template'] as const,
      registers,
    }),
    claimShortcutRefusals: new HotCounter({
      name: 'stampede_claim_shortcut_refusals_total',
      help: 'Claims this process refused without asking Redis (refusal flags: sold_out, closed, paused; limit_reached from its record of users at their limit). Also counted in stampede_claims_total.',
      labelNames: ['template', 'outcome'] as const,
      registers,
    }),
    claimFastPathAnswers: new HotCounter({
      name: 'stampede_claim_fast_path_answers_total',
      help: 'Plain claims answered before Fastify\'s request pipeline (201s, refusals, rate-limit and throttle 429s, error answers), by status. Also counted in stampede_claims_total and the HTTP metrics.',
      labelNames: ['status'] as const,
      registers,
    }),
    claimRefusalFlagsSubscribed: new client.Gauge({
      name: 'stampede_claim_refusal_flags_subscribed',
      help: '1 while the refusal-flags subscription is confirmed (refusals may be shortcut), 0 while every claim asks Redis.',
      aggregator: 'min',
      registers,
    }),
    claimRefusalFlagsInterruptions: new client.Counter({
      name: 'stampede_claim_refusal_flags_interruptions_total',
      help: 'Times a confirmed refusal-flags subscription was lost (every flag forgotten until it is confirmed again).',
      registers,
    }),
    reconcileDrift: new client.Gauge({
      name: 'stampede_reconcile_drift',
      help: 'Issued count in the gate minus rows in PostgreSQL, as last measured by reconcile.',
      labelNames: ['template'] as const,
      registers,
    }),
    couponRedemptions: new client.Counter({
      name: 'stampede_coupon_redemptions_total',
      help: 'Redemption and cancel answers by outcome (used, replayed, already_used, expired, not_yet_valid, min_order, not_found, cancelled, cancel_replayed, order_mismatch).',
      labelNames: ['outcome'] as const,
      registers,
    }),
    pointsOperations: new client.Counter({
      name: 'stampede_points_operations_total',
      help: 'Points calls by operation (earn, use, cancel, transfer, expire) and outcome (ok, replayed, refused, retried, queue_full).',
      labelNames: ['operation', 'outcome'] as const,
      registers,
    }),
    pointsBatchSize: new client.Histogram({
      name: 'stampede_points_batch_size',
      help: 'Points calls (earn, use, cancel, transfer) decided and committed per ledger transaction.',
      buckets: BATCH_BUCKETS,
      registers,
    }),
    jobs: new client.Counter({
      name: 'stampede_jobs_total',
      help: 'Bulk jobs by type and final status.',
      labelNames: ['type', 'status'] as const,
      registers,
    }),
    jobItems: new client.Counter({
      name: 'stampede_job_items_total',
      help: 'Bulk job items by type and result (succeeded, skipped, failed).',
      labelNames: ['type', 'result'] as const,
      registers,
    }),
    jobRunnerRestarts: new client.Counter({
      name: 'stampede_job_runner_restarts_total',
      help: 'Job queue runners (bulk-jobs, webhooks) started again after stopping on an error (a database blip).',
      labelNames: ['runner'] as const,
      registers,
    }),
    rateLimited: new client.Counter({
      name: 'stampede_rate_limited_total',
      help: 'Requests refused 429 RATE_LIMITED by the per-API-key rate limit.',
      registers,
    }),
    claimThrottled: new client.Counter({
      name: 'stampede_claim_throttled_total',
      help: 'Claims refused 429 CLAIM_THROTTLED by an event\'s claim throttle, by template and reason (user, address).',
      labelNames: ['template', 'reason'] as const,
      registers,
    }),
    bucketSettleFailures: new client.Counter({
      name: 'stampede_rate_limit_settle_failures_total',
      help: 'Rate limit and claim throttle settles with Redis that failed (each process then admits up to the whole limit itself).',
      registers,
    }),
    bucketEvictions: new client.Counter({
      name: 'stampede_rate_limit_bucket_evictions_total',
      help: 'Rate limit and claim throttle buckets dropped from memory at their cap (per partner or in total) before going idle.',
      registers,
    }),
    redisErrors: new client.Counter({
      name: 'stampede_redis_errors_total',
      help: 'Redis client errors (connection and command).',
      registers,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
