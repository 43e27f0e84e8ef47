// Where a product run's time went, from the server's own /metrics scraped before and after it:
// the group commit's batches (sizes, commit times), the time claims spent inside the gate and
// inside the HTTP handler (measured by the server from the moment it read the request: what the
// client saw beyond that waited before the server read it), event-loop delay and GC pauses.
// Histograms are read as the run's differences; a bucket bound is reported as "≤ X".

/** Metric samples by `name{labels}` as printed by prom-client. */
type Samples = Map<string, number>;

export async function scrapeMetrics(port: number): Promise<Samples> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  if (!response.ok) throw new Error(`/metrics answered ${response.status}`);
  const samples: Samples = new Map();
  for (const line of (await response.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

export interface HistogramDelta {
  readonly count: number;
  readonly mean: number;
  /** Upper bound of the bucket holding the 99th percentile / the largest observation (Infinity: beyond the last bucket). */
  readonly p99AtMost: number;
  readonly maxAtMost: number;
}

/** The histogram's observations between two scrapes, over the series whose labels contain `labelFilter`. */
export function histogramDelta(before: Samples, after: Samples, name: string, labelFilter = ''): HistogramDelta | undefined {
  const delta = (key: string) => (after.get(key) ?? 0) - (before.get(key) ?? 0);
  let count = 0;
  let sum = 0;
  const buckets = new Map<number, number>();
  for (const key of after.keys()) {
    if (!key.includes(labelFilter)) continue;
    if (key.startsWith(`${name}_count`)) count += delta(key);
    else if (key.startsWith(`${name}_sum`)) sum += delta(key);
    else if (key.startsWith(`${name}_bucket`)) {
      const le = /le="([^"]+)"/.exec(key)?.[1];
      if (le === undefined) continue;
      const bound = le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le);
      buckets.set(bound, (buckets.get(bound) ?? 0) + delta(key));
    }
  }
  if (count <= 0) return undefined;
  const bounds = [...buckets.keys()].sort((a, b) => a - b);
  const atMost = (rank: number) => bounds.find((bound) => buckets.get(bound)! >= rank) ?? Number.POSITIVE_INFINITY;
  return { count, mean: sum / count, p99AtMost: atMost(Math.ceil(count * 0.99)), maxAtMost: atMost(count) };
}

export interface RunDiagnostics {
  /** Group commit (embedded): claims per batch. */
  readonly batchSize?: HistogramDelta;
  /** Group commit (embedded): seconds per batch's INSERT + commit. */
  readonly batchCommitSeconds?: HistogramDelta;
  /** Seconds a claim spent in the gate call. */
  readonly gateSeconds?: HistogramDelta;
  /** Seconds from the server reading a claim request to its answer. */
  readonly handlerSeconds?: HistogramDelta;
  /** Refusals by outcome that the gate decided (a gate call each), not the process's record or flags. */
  readonly gateRefusals?: Record<string, number>;
  /** Claims the fast path answered (the rest went through Fastify's pipeline). */
  readonly fastPathAnswers?: number;
  /** Largest event-loop delay (seconds) sampled during the run (prom-client's monitor, reset at each scrape). */
  readonly eventLoopDelayMaxSeconds?: number;
  /** GC pauses during the run, by kind: count and total seconds. */
  readonly gc: Record<string, { count: number; seconds: number }>;
}

export function runDiagnostics(before: Samples, after: Samples): RunDiagnostics {
  const gc: RunDiagnostics['gc'] = {};
  for (const [key, value] of after) {
    const kind = /^stampede_nodejs_gc_duration_seconds_(sum|count)\{kind="([a-z]+)"/.exec(key);
    if (!kind) continue;
    const entry = (gc[kind[2]!] ??= { count: 0, seconds: 0 });
    const delta = value - (before.get(key) ?? 0);
    if (kind[1] === 'count') entry.count += delta;
    else entry.seconds += Math.round(delta * 1000) / 1000;
  }
  const lag = after.get('stampede_nodejs_eventloop_lag_max_seconds');
  const gateRefusals: Record<string, number> = {};
  let fastPathAnswers = 0;
  for (const [key, value] of after) {
    const delta = value - (before.get(key) ?? 0);
    if (key.startsWith('stampede_claim_fast_path_answers_total')) fastPathAnswers += delta;
    const claim = /^stampede_(claims|claim_shortcut_refusals)_total\{.*outcome="([a-z_]+)"/.exec(key);
    if (!claim || claim[2] === 'issued') continue;
    // Every refusal is in stampede_claims_total; those the process answered itself are also in the shortcut counter.
    gateRefusals[claim[2]!] = (gateRefusals[claim[2]!] ?? 0) + (claim[1] === 'claims' ? delta : -delta);
  }
  const histogram = (name: string, filter?: string) => histogramDelta(before, after, name, filter);
  return {
    ...optional('batchSize', histogram('stampede_claim_batch_size', 'gate="memory"')),
    ...optional('batchCommitSeconds', histogram('stampede_claim_batch_commit_seconds', 'gate="memory"')),
    ...optional('gateSeconds', histogram('stampede_claim_gate_duration_seconds')),
    ...optional('handlerSeconds', histogram('stampede_http_request_duration_seconds', 'route="/v1/coupon-templates/:id/claims"')),
    ...optional('gateRefusals', Object.keys(gateRefusals).length > 0 ? gateRefusals : undefined),
    ...optional('fastPathAnswers', fastPathAnswers),
    ...optional('eventLoopDelayMaxSeconds', lag),
    gc,
  };
}

const optional = <K extends string, V>(key: K, value: V | undefined) => (value === undefined ? {} : { [key]: value }) as Partial<Record<K, V>>;

/** One line for people: "batches 23 (mean 435, max ≤ 1000), commit mean 41 ms (p99 ≤ 100 ms), …". */
export function describeDiagnostics(d: RunDiagnostics): string {
  const ms = (seconds: number) => (Number.isFinite(seconds) ? `${Math.round(seconds * 1000 * 10) / 10} ms` : '> 30 s');
  const parts: string[] = [];
  if (d.batchSize) parts.push(`group commit: ${d.batchSize.count} batches, mean ${Math.round(d.batchSize.mean)} claims (max ≤ ${d.batchSize.maxAtMost})`);
  if (d.batchCommitSeconds) parts.push(`commit mean ${ms(d.batchCommitSeconds.mean)} (max ≤ ${ms(d.batchCommitSeconds.maxAtMost)})`);
  if (d.gateSeconds) parts.push(`in the gate: mean ${ms(d.gateSeconds.mean)}, p99 ≤ ${ms(d.gateSeconds.p99AtMost)}, max ≤ ${ms(d.gateSeconds.maxAtMost)}`);
  if (d.handlerSeconds) parts.push(`server-side (read → answer): mean ${ms(d.handlerSeconds.mean)}, p99 ≤ ${ms(d.handlerSeconds.p99AtMost)}, max ≤ ${ms(d.handlerSeconds.maxAtMost)}`);
  if (d.fastPathAnswers !== undefined && d.handlerSeconds) parts.push(`fast path ${d.fastPathAnswers} of ${d.handlerSeconds.count} claims`);
  if (d.gateRefusals) parts.push(`refusals decided by the gate (not by the process's flags or record): ${Object.entries(d.gateRefusals).map(([outcome, count]) => `${outcome} ${count}`).join(', ')}`);
  if (d.eventLoopDelayMaxSeconds !== undefined) parts.push(`event-loop delay max ${ms(d.eventLoopDelayMaxSeconds)}`);
  const gc = Object.entries(d.gc).filter(([, entry]) => entry.count > 0).map(([kind, entry]) => `${kind} ${entry.count}× ${ms(entry.seconds)}`);
  if (gc.length > 0) parts.push(`GC ${gc.join(', ')}`);
  return parts.join('; ');
}
