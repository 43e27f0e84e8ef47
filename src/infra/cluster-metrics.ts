// Cluster-wide /metrics under node:cluster. Whichever API process Prometheus reaches asks the
// primary; the primary asks every fork for its registry as JSON (prom-client getMetricsAsJSON),
// adds its own registries and merges everything with AggregatorRegistry.aggregate: counters and
// histograms are summed, gauges follow each metric's `aggregator` (sum unless the metric says min,
// max, average...).
//
// A scrape must answer within a second even when the forks are saturated, and counters must never
// go backwards (Prometheus would read a reset and invent a spike):
// - a fork that has not answered within FORK_ANSWER_MS is represented by its previous answer;
// - when a fork exits, its last counters and histograms are kept as "retired" and stay in the sum,
//   so the cluster totals continue across restarts (its gauges are dropped: they described a
//   process that no longer exists).
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client';

type MetricsJson = Array<MetricObjectWithValues<MetricValue<string>>>;

/** Longest the primary waits for one fork before using that fork's previous answer. */
export const FORK_ANSWER_MS = 150;
/** Longest a fork waits for the primary's aggregate before failing the scrape. */
const PRIMARY_ANSWER_MS = 2_000;

const SCRAPE = 'stampede:metrics:scrape';
const SCRAPED = 'stampede:metrics:scraped';
const COLLECT = 'stampede:metrics:collect';
const COLLECTED = 'stampede:metrics:collected';

interface Message {
  readonly type: string;
  readonly requestId: number;
}
interface ScrapedMessage extends Message {
  readonly body?: string;
  readonly error?: string;
}
interface CollectedMessage extends Message {
  readonly metrics: MetricsJson;
}

const isMessage = (value: unknown, type: string): value is Message =>
  typeof value === 'object' && value !== null && (value as Message).type === type;

/**
 * In the primary: answers forks' scrape requests with the cluster aggregate of every fork plus
 * `own` (the primary's registries). Call `retire(worker)` when a fork exits.
 */
export function serveClusterMetrics(own: Registry[]): { retire(worker: Worker): Promise<void> } {
  const latest = new Map<number, MetricsJson>();
  const waiting = new Map<string, () => void>();
  let retired: MetricsJson = [];
  let nextRequestId = 0;

  const collectFrom = (worker: Worker, requestId: number) =>
    new Promise<void>((resolve) => {
      const key = `${worker.id}:${requestId}`;
      const timer = setTimeout(() => { waiting.delete(key); resolve(); }, FORK_ANSWER_MS);
      waiting.set(key, () => { clearTimeout(timer); waiting.delete(key); resolve(); });
      worker.send({ type: COLLECT, requestId } satisfies Message);
    });

  // The primary's own registries get the same deadline as the forks (their collection probes
  // PostgreSQL and Redis), with the same fallback to the previous answer.
  let ownLatest: MetricsJson[] = [];
  const collectOwn = () => {
    let timer: NodeJS.Timeout | undefined;
    const fresh = Promise.all(own.map((registry) => registry.getMetricsAsJSON() as Promise<MetricsJson>)).then((snapshots) => { ownLatest = snapshots; });
    const deadline = new Promise<void>((resolve) => { timer = setTimeout(resolve, FORK_ANSWER_MS); });
    return Promise.race([fresh, deadline]).finally(() => clearTimeout(timer));
  };

  const aggregate = async (): Promise<string> => {
    const requestId = nextRequestId++;
    const forks = Object.values(cluster.workers ?? {}).filter((worker): worker is Worker => worker !== undefined && worker.isConnected());
    await Promise.all([collectOwn(), ...forks.map((worker) => collectFrom(worker, requestId))]);
    const snapshots = [...ownLatest, retired];
    for (const worker of forks) {
      const snapshot = latest.get(worker.id);
      if (snapshot) snapshots.push(snapshot);
    }
    return AggregatorRegistry.aggregate(snapshots).metrics();
  };

  cluster.on('message', (worker, message: unknown) => {
    if (isMessage(message, COLLECTED)) {
      latest.set(worker.id, (message as CollectedMessage).metrics);
      waiting.get(`${worker.id}:${message.requestId}`)?.();
    } else if (isMessage(message, SCRAPE)) {
      const { requestId } = message;
      aggregate().then(
        (body) => worker.isConnected() && worker.send({ type: SCRAPED, requestId, body } satisfies ScrapedMessage),
        (error: unknown) => worker.isConnected() && worker.send({ type: SCRAPED, requestId, error: String(error) } satisfies ScrapedMessage),
      );
    }
  });

  return {
    async retire(worker) {
      const last = latest.get(worker.id);
      latest.delete(worker.id);
      if (!last) return;
      const monotonic = last.filter((metric) => ['counter', 'histogram'].includes(String(metric.type)));
      retired = await AggregatorRegistry.aggregate([retired, monotonic]).getMetricsAsJSON() as MetricsJson;
    },
  };
}

/** In a fork: answers the primary's collection requests with this process's registry. */
export function answerClusterMetrics(registry: Registry): void {
  process.on('message', (message: unknown) => {
    if (!isMessage(message, COLLECT)) return;
    const { requestId } = message;
    void registry.getMetricsAsJSON().then((metrics) => {
      if (process.connected) process.send!({ type: COLLECTED, requestId, metrics } satisfies CollectedMessage);
    });
  });
}

/** In a fork: the cluster-wide metrics text, for the /metrics route (OpsOptions.metricsText). */
export function clusterMetricsText(): () => Promise<{ contentType: string; body: string }> {
  const pending = new Map<number, (answer: ScrapedMessage) => void>();
  let nextRequestId = 0;
  process.on('message', (message: unknown) => {
    if (isMessage(message, SCRAPED)) pending.get(message.requestId)?.(message as ScrapedMessage);
  });
  return () => new Promise((resolve, reject) => {
    const requestId = nextRequestId++;
    const timer = setTimeout(() => {
      pending.delete(requestId);
      reject(new Error(`the cluster primary did not answer the metrics request within ${PRIMARY_ANSWER_MS} ms`));
    }, PRIMARY_ANSWER_MS);
    pending.set(requestId, (answer) => {
      clearTimeout(timer);
      pending.delete(requestId);
      if (answer.body === undefined) reject(new Error(`cluster metrics failed: ${answer.error}`));
      else resolve({ contentType: AggregatorRegistry.PROMETHEUS_CONTENT_TYPE, body: answer.body });
    });
    process.send!({ type: SCRAPE, requestId } satisfies Message);
  });
}
