// The claim load generator, run as its own process by run.ts so its CPU is not the server's.
// `users` distinct users each send `claimsPerUser` claims back to back (the next as soon as the
// previous is answered, like a user clicking again); `connections` keep-alive sockets each work
// through users taken from one shared queue, so exactly users × claimsPerUser requests are sent.
// Input: one JSON LoadPlan as argv[2]. Output: one JSON LoadResult line on stdout.
import { performance } from 'node:perf_hooks';
import { jsonPost, openConnections, type KeepAliveConnection, type RawResponse } from '../lib/keepalive-client.ts';
import { summariseLatencies, type LatencySummary } from '../lib/stats.ts';

export interface LoadPlan {
  readonly host: string;
  readonly port: number;
  readonly path: string;
  /** When set, user n claims at paths[n % paths.length] instead (load spread over several events). */
  readonly paths?: readonly string[];
  readonly headers: Record<string, string>;
  readonly users: number;
  readonly claimsPerUser: number;
  readonly connections: number;
  /** User ids are `${userPrefix}${n}`, n = 0 … users − 1, so every run can use fresh users. */
  readonly userPrefix: string;
  /** Keep [couponId, userId] of every 201 for verification (off for the bare route's constant). */
  readonly collectAcknowledged: boolean;
  readonly timeoutMs: number;
}

/** One of the slowest answers of a run: when it was sent (ms after the first request), how long it took, what it got. */
export interface SlowAnswer {
  readonly sentAtMs: number;
  readonly latencyMs: number;
  readonly outcome: string;
}

export interface LoadResult {
  /** Which load generator ran: this Node one or wrk (wrk-generator.ts). */
  readonly generator: 'node' | 'wrk';
  readonly requests: number;
  readonly durationMs: number;
  readonly requestsPerSecond: number;
  readonly latencyMs: LatencySummary;
  /** "201", "409 SOLD_OUT", "409 CLAIM_LIMIT_REACHED", …, "500 INTERNAL_ERROR", "error: …". */
  readonly outcomes: Record<string, number>;
  /** Up to five distinct unexpected answers, to say what went wrong. */
  readonly unexpectedSamples: string[];
  readonly acknowledged: Array<[couponId: string, userId: string]>;
  /** Epoch milliseconds (sub-millisecond precision) of the first request and the last 201 received. */
  readonly startedAt: number;
  readonly last201At: number | null;
  /** CPU seconds the load generator's process spent during the run (user + system). */
  readonly cpuSeconds: number;
  /** Answers that took longer than one second. */
  readonly overOneSecond: number;
  /** The slowest answers, and how many over one second were sent in each second of the run. */
  readonly tail?: { readonly slowest: SlowAnswer[]; readonly overOneSecondBySentSecond: Record<string, number> };
  /** wrk only: its socket errors (a read or write error loses the request in flight). */
  readonly errors?: Record<string, number>;
  /** wrk only: its own histogram's p99 (corrected for coordinated omission) and max, for comparison. */
  readonly wrkLatencyMs?: { readonly correctedP99: number; readonly max: number };
  /** The answers split at the last 201 (absent when no 201 came): the two phases of a drop. */
  readonly phases?: Phases;
}

/** A drop's two phases: claims sent until the last 201 arrived (issuing), and the refusals after. */
export interface Phases {
  readonly issuing: PhaseFigures;
  readonly afterLast201: PhaseFigures;
}

export interface PhaseFigures {
  readonly requests: number;
  readonly durationMs: number;
  /** Answers over 50 ms: the p99 ≤ 50 ms target allows 1 % of the whole run's. */
  readonly overFiftyMs: number;
  /** The same by answer ("201", "409 SOLD_OUT", …): which answers are slow. */
  readonly overFiftyMsByOutcome: Record<string, number>;
  readonly latencyMs: LatencySummary;
}

/**
 * Splits a run's latencies at the last 201: sentAtMs[i] (ms after the first request) is when the
 * request of latenciesMs[i] was sent. The issuing phase is what a drop's p99 mostly comes from.
 */
export function splitAtLast201(latenciesMs: Float64Array, sentAtMs: Float64Array, outcomes: readonly string[], last201AtMs: number | null,
  durationMs: number): Phases | undefined {
  if (last201AtMs === null) return undefined;
  const issuing = { latencies: [] as number[], slow: {} as Record<string, number> };
  const after = { latencies: [] as number[], slow: {} as Record<string, number> };
  for (let i = 0; i < latenciesMs.length; i++) {
    const phase = sentAtMs[i]! <= last201AtMs ? issuing : after;
    phase.latencies.push(latenciesMs[i]!);
    if (latenciesMs[i]! > 50) phase.slow[outcomes[i]!] = (phase.slow[outcomes[i]!] ?? 0) + 1;
  }
  const figures = ({ latencies, slow }: typeof issuing, phaseMs: number): PhaseFigures => ({
    requests: latencies.length,
    durationMs: Math.max(0, phaseMs),
    overFiftyMs: Object.values(slow).reduce((sum, count) => sum + count, 0),
    overFiftyMsByOutcome: slow,
    latencyMs: summariseLatencies(Float64Array.from(latencies)),
  });
  return { issuing: figures(issuing, last201AtMs), afterLast201: figures(after, durationMs - last201AtMs) };
}

const SLOWEST_KEPT = 10;

/** The slow end of a run's answers, fed one answer at a time (both load generators use it). */
export class TailRecorder {
  private readonly slowest: SlowAnswer[] = [];
  private readonly bySentSecond: Record<string, number> = {};
  overOneSecond = 0;

  /** `sentAtMs`: milliseconds after the run's first request. */
  record(sentAtMs: number, latencyMs: number, outcome: string): void {
    if (latencyMs > 1000) {
      this.overOneSecond += 1;
      const second = String(Math.floor(sentAtMs / 1000));
      this.bySentSecond[second] = (this.bySentSecond[second] ?? 0) + 1;
    }
    if (this.slowest.length < SLOWEST_KEPT || latencyMs > this.slowest.at(-1)!.latencyMs) {
      this.slowest.push({ sentAtMs: Math.round(sentAtMs), latencyMs: Math.round(latencyMs), outcome });
      this.slowest.sort((a, b) => b.latencyMs - a.latencyMs);
      if (this.slowest.length > SLOWEST_KEPT) this.slowest.pop();
    }
  }

  tail(): NonNullable<LoadResult['tail']> {
    return { slowest: this.slowest, overOneSecondBySentSecond: this.bySentSecond };
  }
}

const ERROR_CODE = /"code"\s*:\s*"([A-Z_]+)"/;

export async function generateLoad(plan: LoadPlan): Promise<LoadResult> {
  const connections = await openConnections(plan.host, plan.port, plan.connections, plan.timeoutMs);
  const total = plan.users * plan.claimsPerUser;
  const latencies = new Float64Array(total);
  const sentAts = new Float64Array(total);
  const answers: string[] = [];
  const outcomes: Record<string, number> = {};
  const unexpectedSamples = new Set<string>();
  const sample = (text: string) => { if (unexpectedSamples.size < 5) unexpectedSamples.add(text); };
  const acknowledged: Array<[string, string]> = [];
  let recorded = 0;
  let nextUser = 0;
  let last201At: number | null = null;
  const now = () => performance.timeOrigin + performance.now();

  const tail = new TailRecorder();
  let firstSentAt = 0;
  const record = (userId: string, response: RawResponse | Error, latencyMs: number, sentAt: number) => {
    sentAts[recorded] = sentAt - firstSentAt;
    latencies[recorded++] = latencyMs;
    let outcome: string;
    if (response instanceof Error) {
      outcome = `error: ${response.message}`;
      sample(outcome);
    } else if (response.status === 201) {
      outcome = '201';
      last201At = now();
      if (plan.collectAcknowledged) {
        const body = JSON.parse(response.body) as { couponId?: string; userId?: string };
        if (typeof body.couponId !== 'string' || body.userId !== userId) {
          outcome = '201 with a wrong body';
          sample(`${userId}: ${response.body.slice(0, 300)}`);
        } else {
          acknowledged.push([body.couponId, userId]);
        }
      }
    } else {
      outcome = `${response.status} ${ERROR_CODE.exec(response.body)?.[1] ?? '?'}`;
      if (response.status !== 409) sample(`${response.status}: ${response.body.slice(0, 300)}`);
    }
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    answers.push(outcome);
    tail.record(sentAt - firstSentAt, latencyMs, outcome);
  };

  const lane = async (connection: KeepAliveConnection) => {
    for (let user = nextUser++; user < plan.users; user = nextUser++) {
      const userId = `${plan.userPrefix}${user}`;
      const target = plan.paths ? plan.paths[user % plan.paths.length]! : plan.path;
      const request = jsonPost(plan.host, plan.port, target, plan.headers, { userId });
      for (let claim = 0; claim < plan.claimsPerUser; claim++) {
        const sentAt = performance.now();
        const response = await connection.request(request).catch((error: Error) => error);
        record(userId, response, performance.now() - sentAt, sentAt);
      }
    }
  };

  const cpuBefore = process.cpuUsage();
  firstSentAt = performance.now();
  const startedAt = now();
  await Promise.all(connections.map(lane));
  const durationMs = now() - startedAt;
  const cpu = process.cpuUsage(cpuBefore);
  for (const connection of connections) connection.close();

  return {
    generator: 'node',
    requests: recorded,
    durationMs,
    requestsPerSecond: recorded / (durationMs / 1000),
    latencyMs: summariseLatencies(latencies.subarray(0, recorded)),
    outcomes,
    unexpectedSamples: [...unexpectedSamples],
    acknowledged,
    startedAt,
    last201At,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    overOneSecond: tail.overOneSecond,
    tail: tail.tail(),
    phases: splitAtLast201(latencies.subarray(0, recorded), sentAts.subarray(0, recorded), answers, last201At === null ? null : last201At - startedAt, durationMs),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const plan = JSON.parse(process.argv[2] ?? '') as LoadPlan;
  const result = await generateLoad(plan);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
