// Hot metrics read exactly as prom-client's own would after the same calls: the text format, the
// JSON the cluster primary collects, and the cluster's sum of two processes.
import client, { AggregatorRegistry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { HotCounter, HotHistogram } from './hot-metrics.ts';
import { LATENCY_BUCKETS } from './metrics.ts';

const labelNames = ['route', 'status_class'] as const;
const observations: Array<[number, string, string]> = [
  [0.0001, '/a', '2xx'], [0.0005, '/a', '2xx'], [0.003, '/a', '4xx'], [0.2, '/b', '2xx'], [45, '/b', '2xx'], [0.0005, '/a', '2xx'],
];

function both() {
  const hot = new client.Registry();
  const plain = new client.Registry();
  const hotHistogram = new HotHistogram({ name: 'h_seconds', help: 'h', labelNames, registers: [hot] }, LATENCY_BUCKETS);
  const plainHistogram = new client.Histogram({ name: 'h_seconds', help: 'h', labelNames, buckets: LATENCY_BUCKETS, registers: [plain] });
  const hotCounter = new HotCounter({ name: 'c_total', help: 'c', labelNames, registers: [hot] });
  const plainCounter = new client.Counter({ name: 'c_total', help: 'c', labelNames, registers: [plain] });
  const record = () => {
    for (const [value, route, statusClass] of observations) {
      hotHistogram.observe(value, route, statusClass);
      plainHistogram.observe({ route, status_class: statusClass }, value);
      hotCounter.inc(route, statusClass);
      plainCounter.inc({ route, status_class: statusClass });
    }
  };
  return { hot, plain, record, hotHistogram, hotCounter };
}

describe('hot metrics', () => {
  it('expose the same text and JSON as prom-client after the same calls, read after read', async () => {
    const { hot, plain, record } = both();
    record();
    expect(await hot.metrics()).toBe(await plain.metrics());
    expect(await hot.getMetricsAsJSON()).toEqual(await plain.getMetricsAsJSON());
    // Counts added after a read join the next one (a counter's pending counts are handed over once).
    record();
    expect(await hot.metrics()).toBe(await plain.metrics());
    expect(await hot.metrics()).toBe(await plain.metrics());
  });

  it('sum across processes as prom-client histograms and counters do (the cluster /metrics)', async () => {
    const first = both();
    const second = both();
    first.record();
    second.record();
    second.record();
    const hot = AggregatorRegistry.aggregate([await first.hot.getMetricsAsJSON(), await second.hot.getMetricsAsJSON()]);
    const plain = AggregatorRegistry.aggregate([await first.plain.getMetricsAsJSON(), await second.plain.getMetricsAsJSON()]);
    expect(await hot.metrics()).toBe(await plain.metrics());
  });

  it('refuses a value that is not a number, as prom-client does', () => {
    const { hotHistogram } = both();
    expect(() => hotHistogram.observe(Number.NaN, '/a', '2xx')).toThrow(TypeError);
  });
});
