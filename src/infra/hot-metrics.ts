// Metrics counted on every claim request (a stampede's hot path), without prom-client's work per
// call: a labels object, label validation, a key string built from the labels and looked up, and
// for a histogram a closure and a pair object — ~5 % of the claim path's CPU (decision 210). A
// series is found by its label values in nested Maps (label values the callers already hold, so
// nothing is built per call) and counted in plain numbers:
//   - HotCounter keeps a prom-client Counter and hands it the counts when it is collected (every
//     read: /metrics, get(), the cluster's collection): readers see the same series and values;
//   - HotHistogram is its own metric in the registry, answering get() in prom-client's histogram
//     shape (the text format and the cluster's aggregation read that shape), with the same buckets.
import client, { type LabelValues, type MetricObjectWithValues, type MetricValueWithName, type Registry } from 'prom-client';

interface CounterSeries<L extends string> {
  readonly labels: LabelValues<L>;
  count: number;
}

interface HistogramSeries<L extends string> {
  readonly labels: LabelValues<L>;
  /** Observations per bucket (not cumulative); the last one is +Inf. */
  readonly buckets: Float64Array;
  sum: number;
  count: number;
}

type Tree<S> = Map<string, Tree<S> | S>;

/** The series of `values` (in labelNames order) in `tree`, made by `create` on first use. */
function seriesOf<S>(tree: Tree<S>, values: readonly string[], create: () => S): S {
  let node = tree;
  const last = values.length - 1;
  for (let i = 0; i < last; i++) {
    let next = node.get(values[i]!) as Tree<S> | undefined;
    if (!next) node.set(values[i]!, (next = new Map()));
    node = next;
  }
  let series = node.get(values[last]!) as S | undefined;
  if (!series) node.set(values[last]!, (series = create()));
  return series;
}

function labelsOf<L extends string>(labelNames: readonly L[], values: readonly string[]): LabelValues<L> {
  return Object.fromEntries(labelNames.map((name, i) => [name, values[i]!])) as LabelValues<L>;
}

export interface HotMetricConfiguration<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  readonly registers: Registry[];
}

export class HotCounter<L extends string> {
  readonly metric: client.Counter<L>;
  private readonly tree: Tree<CounterSeries<L>> = new Map();
  private readonly all: Array<CounterSeries<L>> = [];

  constructor(private readonly config: HotMetricConfiguration<L>) {
    const flush = () => this.flush();
    this.metric = new client.Counter({ name: config.name, help: config.help, labelNames: config.labelNames, registers: config.registers, collect: flush });
  }

  /** Adds one to the series of these label values (in labelNames order). */
  inc(...values: string[]): void {
    seriesOf(this.tree, values, () => this.create(values)).count += 1;
  }

  private create(values: readonly string[]): CounterSeries<L> {
    const series = { labels: labelsOf(this.config.labelNames, values), count: 0 };
    this.all.push(series);
    return series;
  }

  private flush(): void {
    for (const series of this.all) {
      if (series.count === 0) continue;
      this.metric.inc(series.labels, series.count);
      series.count = 0;
    }
  }
}

export class HotHistogram<L extends string> {
  readonly type = 'histogram'; // prom-client's MetricType enum is a type only: no runtime value
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  private tree: Tree<HistogramSeries<L>> = new Map();
  private all: Array<HistogramSeries<L>> = [];

  constructor(
    private readonly config: HotMetricConfiguration<L>,
    private readonly upperBounds: readonly number[],
  ) {
    this.name = config.name;
    this.help = config.help;
    for (const registry of config.registers) registry.registerMetric(this as unknown as client.Metric);
  }

  /** Observes `value` in the series of these label values (in labelNames order). */
  observe(value: number, ...values: string[]): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    const series = seriesOf(this.tree, values, () => this.create(values));
    const bounds = this.upperBounds;
    let bucket = 0;
    while (bucket < bounds.length && value > bounds[bucket]!) bucket += 1;
    series.buckets[bucket]! += 1;
    series.sum += value;
    series.count += 1;
  }

  /** prom-client's histogram get(): per series, cumulative buckets (`le` first, as prom-client orders it), +Inf, sum, count. */
  async get(): Promise<MetricObjectWithValues<MetricValueWithName<L | 'le'>>> {
    // `exemplar: null` on buckets as prom-client writes it (no exemplars here).
    const values: Array<MetricValueWithName<L | 'le'> & { exemplar?: null }> = [];
    for (const series of this.all) {
      let cumulative = 0;
      this.upperBounds.forEach((bound, i) => {
        cumulative += series.buckets[i]!;
        values.push({ labels: { le: bound, ...series.labels } as never, value: cumulative, metricName: `${this.name}_bucket`, exemplar: null });
      });
      values.push({ labels: { le: '+Inf', ...series.labels } as never, value: series.count, metricName: `${this.name}_bucket`, exemplar: null });
      values.push({ labels: { ...series.labels } as never, value: series.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...series.labels } as never, value: series.count, metricName: `${this.name}_count` });
    }
    // prom-client's type asks for `collect`, which its own histograms' get() does not return either.
    return { name: this.name, help: this.help, type: 'histogram' as unknown as client.MetricType, values, aggregator: this.aggregator } as MetricObjectWithValues<MetricValueWithName<L | 'le'>>;
  }

  reset(): void {
    this.tree = new Map();
    this.all = [];
  }

  private create(values: readonly string[]): HistogramSeries<L> {
    const series = { labels: labelsOf(this.config.labelNames, values), buckets: new Float64Array(this.upperBounds.length + 1), sum: 0, count: 0 };
    this.all.push(series);
    return series;
  }
}
