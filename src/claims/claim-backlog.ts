// The claim backlog as Prometheus sees it: per active template, the stream length (claims
// acknowledged to clients, not yet persisted) and the consumer lag (age of the oldest of them),
// read from Redis at scrape time by every process that has Redis. The persister also reports
// them, but only while its loop runs: a stopped, stuck or dead persister would freeze its numbers
// at their last (healthy) value, and StampedeClaimConsumerLagHigh would never fire.
import type { Metrics } from '../infra/metrics.ts';
import type { Redis } from '../infra/redis.ts';
import { activeTemplateIds, templateClaimKeys } from './redis-keys.ts';

/** A scrape answers within a second even when Redis hangs; the last values stay meanwhile. */
const MEASURE_TIMEOUT_MS = 300;

export function observeClaimBacklog(metrics: Metrics, redis: Redis): void {
  metrics.measureClaimBacklogOnScrape(async () => {
    // Unknown while Redis is unreachable: keep the last values (StampedeRedisDown says why).
    if (!redis.isReady) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), MEASURE_TIMEOUT_MS); });
    const measured = await Promise.race([measure(metrics, redis), timeout]).finally(() => clearTimeout(timer));
    if (!measured) return;
    metrics.claimStreamLength.reset();
    metrics.claimConsumerLag.reset();
    for (const [template, { length, lagSeconds }] of measured) {
      metrics.claimStreamLength.set({ template }, length);
      metrics.claimConsumerLag.set({ template }, lagSeconds);
    }
  });
}

async function measure(metrics: Metrics, redis: Redis): Promise<Map<string, { length: number; lagSeconds: number }>> {
  const templateIds = await activeTemplateIds(redis);
  // Redis' clock, the one stream ids are made of: host clock skew does not become lag.
  const [seconds, micros] = await redis.time();
  const nowMs = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  const measured = await Promise.all(templateIds.map(async (templateId) => {
    const { stream } = templateClaimKeys(templateId);
    const [length, oldest] = await Promise.all([redis.xLen(stream), redis.xRange(stream, '-', '+', { COUNT: 1 })]);
    // Stream ids start with the Redis clock in ms at XADD.
    const oldestMs = oldest?.[0] ? Number(oldest[0].id.split('-')[0]) : nowMs;
    return { label: metrics.templateLabel(templateId), length, lagSeconds: Math.max(0, nowMs - oldestMs) / 1000 };
  }));
  // Templates beyond the label cap share "other": lengths add up, the worst lag stands.
  const byLabel = new Map<string, { length: number; lagSeconds: number }>();
  for (const { label, length, lagSeconds } of measured) {
    const seen = byLabel.get(label);
    byLabel.set(label, { length: (seen?.length ?? 0) + length, lagSeconds: Math.max(seen?.lagSeconds ?? 0, lagSeconds) });
  }
  return byLabel;
}
