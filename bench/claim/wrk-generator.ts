// The claim load from Debian's `wrk` (C, epoll) with wrk-claims.lua: the same users, clicks and
// connections as load-generator.ts at a fraction of its CPU per request, so the server under test
// keeps more of the two cores. A user's next click goes out once the previous one is answered, as
// there (on the next connection the wrk thread asks a request for: usually the same one). Latency is measured
// per request by the script (matched by the echoed X-Request-Id), not taken from wrk's histogram,
// which wrk corrects for coordinated omission (that corrected p99 is kept beside, for comparison
// with figures taken with plain wrk). Every 201's coupon id and user are kept too, so a run is
// verified exactly as with the Node generator.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { round, summariseLatencies } from '../lib/stats.ts';
import { TailRecorder, splitAtLast201, type LoadPlan, type LoadResult } from './load-generator.ts';

const SCRIPT = fileURLToPath(new URL('./wrk-claims.lua', import.meta.url));
/** No progress line for this long: wrk is ended and the run reported with what was answered. */
const STALL_MS = 60_000;
const CLOCK_TICKS_PER_SECOND = 100;
/**
 * How long the first claims wait after the connections open, so the server has accepted them all
 * before the load starts (as the Node generator connects first): an idle server accepts about one
 * connection per event-loop turn, well under 1 ms each.
 */
const holdMs = (connections: number) => 500 + connections;

export function wrkInstalled(): boolean {
  return spawnSync('wrk', ['--version'], { stdio: 'ignore' }).error === undefined;
}

interface WrkSummary {
  answered: number;
  requests: number;
  startedAt: number;
  finishedAt: number;
  last201At: number;
  outcomes: Record<string, number>;
  samples: string[];
  /** Answers whose X-Request-Id did not match a request sent (a server that does not echo it). */
  unmatched: number;
  wrkCorrectedP99Us: number;
  wrkMaxUs: number;
  errors: Record<string, number>;
}

/** CPU seconds (user + system, all threads) a live process has spent, from /proc. */
function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

/** `threads` wrk threads (each with connections / threads sockets and users / threads users). */
export async function generateLoadWithWrk(plan: LoadPlan, threads: number, track: (kill: () => void) => void): Promise<LoadResult> {
  const usedThreads = Math.max(1, Math.min(threads, plan.connections, plan.users));
  const out = await mkdtemp(path.join(os.tmpdir(), 'stampede-bench-wrk-'));
  const capSeconds = Math.ceil(60 + (plan.users * plan.claimsPerUser) / 500);
  const args = [
    '-t', String(usedThreads), '-c', String(plan.connections), '-d', `${capSeconds}s`, '--timeout', '60s', '-s', SCRIPT,
    `http://${plan.host}:${plan.port}`,
    `host=${plan.host}:${plan.port}`, `path=${plan.path}`, `key=${plan.headers['x-api-key'] ?? ''}`,
    `users=${plan.users}`, `clicks=${plan.claimsPerUser}`, `prefix=${plan.userPrefix}`, `threads=${usedThreads}`,
    `keep=${plan.collectAcknowledged ? 1 : 0}`, `out=${out}`, `hold=${holdMs(plan.connections)}`,
  ];
  try {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let threadsDone = 0;
    let cpuSeconds = Number.NaN;
    let endedAt = 0;
    // wrk waits out its whole -d before it reports: end it (SIGINT) once the work is done, stalled
    // or interrupted, reading its CPU first (it is gone from /proc once it exits).
    const end = () => {
      if (endedAt > 0) return;
      endedAt = performance.timeOrigin + performance.now();
      try {
        cpuSeconds = processCpuSeconds(child.pid!);
      } catch {
        // already exited
      }
      child.kill('SIGINT');
    };
    track(end);
    let lastProgress = Date.now();
    const stall = setInterval(() => { if (Date.now() - lastProgress > STALL_MS) end(); }, 1_000);
    let pending = '';
    child.stdout.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      stdout += text;
      pending += text;
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        if (line.startsWith('wrk-progress')) lastProgress = Date.now();
        if (line.startsWith('wrk-thread-done') && ++threadsDone === usedThreads) end();
      }
    });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8'); });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    clearInterval(stall);
    const line = stdout.split('\n').find((candidate) => candidate.startsWith('wrk-result '));
    if (!line) throw new Error(`wrk ended (exit ${code}) without a result:\n${stderr.slice(-2000)}\n${stdout.slice(-2000)}`);
    const summary = JSON.parse(line.slice('wrk-result '.length)) as WrkSummary;

    const files = await readdir(out);
    const acknowledged: Array<[string, string]> = [];
    if (plan.collectAcknowledged) {
      for (const file of files.filter((name) => name.startsWith('acked-'))) {
        for (const row of (await readFile(path.join(out, file), 'utf8')).split('\n')) {
          const [couponId, userId] = row.split('\t');
          if (couponId && userId) acknowledged.push([couponId, userId]);
        }
      }
    }
    // Every matched answer: "sentAt (epoch ms)<TAB>latency ms<TAB>outcome".
    const latencies = new Float64Array(summary.answered);
    const sentAts = new Float64Array(summary.answered);
    const answers: string[] = [];
    const tail = new TailRecorder();
    let recorded = 0;
    for (const file of files.filter((name) => name.startsWith('latency-'))) {
      for (const row of (await readFile(path.join(out, file), 'utf8')).split('\n')) {
        if (row === '' || recorded >= latencies.length) continue;
        const [sentAt, latency, outcome] = row.split('\t');
        sentAts[recorded] = Number(sentAt) - summary.startedAt;
        answers.push(outcome!);
        latencies[recorded++] = Number(latency);
        tail.record(Number(sentAt) - summary.startedAt, Number(latency), outcome!);
      }
    }
    // A server that does not echo X-Request-Id leaves latencies unmeasured: a set-up error, not a figure.
    if (summary.unmatched > 0) throw new Error(`wrk: ${summary.unmatched} answers came without their X-Request-Id echoed`);
    // Every thread answered its share: first request to last answer; otherwise until wrk was ended.
    const durationMs = (threadsDone === usedThreads ? summary.finishedAt : endedAt || performance.timeOrigin + performance.now()) - summary.startedAt;
    const ms = (us: number) => round(us / 1000);
    return {
      generator: 'wrk',
      requests: summary.answered,
      durationMs,
      requestsPerSecond: summary.answered / (durationMs / 1000),
      // (A thread that did not answer its whole share, in a run cut short, wrote no latencies.)
      latencyMs: summariseLatencies(latencies.subarray(0, recorded)),
      outcomes: summary.outcomes,
      unexpectedSamples: summary.samples,
      acknowledged,
      startedAt: summary.startedAt,
      last201At: summary.last201At > 0 ? summary.last201At : null,
      cpuSeconds,
      overOneSecond: tail.overOneSecond,
      tail: tail.tail(),
      errors: summary.errors,
      wrkLatencyMs: { correctedP99: ms(summary.wrkCorrectedP99Us), max: ms(summary.wrkMaxUs) },
      phases: splitAtLast201(latencies.subarray(0, recorded), sentAts.subarray(0, recorded), answers, summary.last201At > 0 ? summary.last201At - summary.startedAt : null, durationMs),
    };
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}
