// Prometheus metrics. One registry per process context (tests build several apps in one
// process); cluster aggregation lives in src/infra/cluster-metrics.ts. Label sets are bounded:
// routes are route patterns, never raw URLs, and nothing is labelled by user.
import client from 'prom-client';

// Sub-millisecond to multi-second: a flash-sale claim answers in ~1 ms, a bulk upload in seconds.
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export function createMetrics() {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'stampede_' });
  return {
    registry,
    httpRequestDuration: new client.Histogram({
      name: 'stampede_http_request_duration_seconds',
      help: 'HTTP request latency by route pattern, method and status class.',
      labelNames: ['route', 'method', 'status_class'] as const,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
