// `stampede serve` with STAMPEDE_PROCESSES=2 in distributed mode (Redis gate, embedded PostgreSQL
// started by the primary), as a real process tree: /metrics
// on any API process sums every process's counters, keeps answering during a claim load with
// totals that never go backwards, keeps its totals when a crashed fork is re-forked, and SIGTERM
// drains the whole cluster. How fast a scrape answers under load (FORK_ANSWER_MS bounds it) is a
// performance figure: a shared CI machine makes any wall-clock bound here flaky or meaningless.
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../../src/infra/free-port.ts';
import { metricSample as sample } from '../harness/metrics-text.ts';
import { startRedisServer } from '../harness/redis-server.ts';
import { spawnStampede, type StampedeProcess } from '../harness/spawn-stampede.ts';
import { waitFor } from '../harness/wait-for.ts';
import { ADMIN_TOKEN, templateBody } from '../harness/test-app.ts';

/** A GET on a fresh connection, so the cluster's round-robin spreads requests over the forks. */
function getOnNewConnection(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? 0));
    }).on('error', reject);
  });
}

const processAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('stampede serve with STAMPEDE_PROCESSES=2', () => {
  let stampede: StampedeProcess | undefined;
  const cleanups: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    if (stampede && stampede.child.exitCode === null) {
      stampede.child.kill('SIGTERM');
      await stampede.exited;
    }
    for (const cleanup of cleanups) await cleanup().catch(() => undefined);
  });

  it('refuses to run several processes without Redis, saying why', async () => {
    const refused = spawnStampede(['serve'], { STAMPEDE_PROCESSES: '2', DATABASE_URL: inject('databaseUrl') });
    expect(await refused.exited).toBe(2);
    expect(refused.output()).toMatch(/STAMPEDE_PROCESSES > 1 requires distributed mode: set REDIS_URL/);
  });

  it('sums counters over the processes, keeps scraping under load, survives a crashed fork and drains on SIGTERM', async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    // Its own Redis and (started by the primary) its own embedded PostgreSQL: the workers fork must
    // not persist other test files' claims or run their jobs.
    const redis = await startRedisServer();
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'stampede-cluster-'));
    cleanups.push(() => redis.stop(), () => rm(dataDir, { recursive: true, force: true }));
    stampede = spawnStampede(['serve'], {
      STAMPEDE_DATA_DIR: dataDir, REDIS_URL: redis.url, STAMPEDE_ADMIN_TOKEN: ADMIN_TOKEN,
      STAMPEDE_PROCESSES: '2', STAMPEDE_DB_POOL_SIZE: '5', PORT: String(port), HOST: '127.0.0.1',
    });
    await stampede.waitForOutput(/"msg":"cluster ready"/, 120_000);
    const apiPids = [...new Set([...stampede.output().matchAll(/"pid":(\d+),[^\n]*"msg":"Server listening/g)].map((match) => Number(match[1])))];
    expect(apiPids).toHaveLength(2);
    const scrape = async () => {
      const started = performance.now();
      const response = await fetch(`${base}/metrics`);
      const text = await response.text();
      expect(response.status).toBe(200);
      return { text, ms: performance.now() - started };
    };

    // N requests on fresh connections, which the cluster's round-robin hands to the two forks in
    // turn: the aggregate counts all of them.
    const N = 40;
    const statuses = await Promise.all(Array.from({ length: N }, () => getOnNewConnection(`${base}/health/live`)));
    expect(statuses.every((status) => status === 200)).toBe(true);
    const liveSeries = 'stampede_http_request_duration_seconds_count{route="/health/live",method="GET",status_class="2xx"}';
    // A fork that answers the primary late is represented by its previous answer: under a loaded
    // machine the sum can lag by a scrape, so exact totals are awaited over a few scrapes.
    const scrapeUntil = async (series: string, expected: number) => {
      let text = '';
      await waitFor(async () => {
        text = (await scrape()).text;
        return sample(text, series) === expected;
      }, { what: `${series} to reach ${expected}`, intervalMs: 250 }).catch(() => undefined); // the expect below says what was seen
      expect(sample(text, series), series).toBe(expected);
      return text;
    };
    const first = { text: await scrapeUntil(liveSeries, N) };
    // Every process reports: primary, two API forks and the workers fork, 5 connections each at most
    // in each of its two pools.
    expect(sample(first.text, 'stampede_db_pool_connections{pool="general",state="max"}')).toBe(4 * 5);
    expect(sample(first.text, 'stampede_db_pool_connections{pool="ledger",state="max"}')).toBe(4 * 5);
    expect(sample(first.text, 'stampede_process_restarts_total{role="api"}')).toBe(0);

    // A claim load on both forks; scrapes keep answering meanwhile, and the claim total never drops.
    const partner = await (await fetch(`${base}/v1/partners`, {
      method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'cluster-metrics' }),
    })).json() as { apiKey: string };
    const created = await fetch(`${base}/v1/coupon-templates`, {
      method: 'POST', headers: { 'x-api-key': partner.apiKey, 'content-type': 'application/json' }, body: JSON.stringify(templateBody({ totalQuantity: 1_000_000 })),
    });
    expect(created.status).toBe(201);
    const template = await created.json() as { id: string };
    let nextUser = 0;
    const load = autocannon({
      url: `${base}/v1/coupon-templates/${template.id}/claims`, connections: 16, amount: 2_000,
      requests: [{
        method: 'POST', headers: { 'x-api-key': partner.apiKey, 'content-type': 'application/json' },
        setupRequest: (request) => ({ ...request, body: JSON.stringify({ userId: `user-${nextUser++}` }) }),
      }],
    });
    const scrapeTimes: number[] = [];
    const issuedSeen: number[] = [];
    const loadDone = new Promise<autocannon.Result>((resolve, reject) => load.then(resolve, reject));
    let finished = false;
    void loadDone.finally(() => { finished = true; });
    const loadDeadline = Date.now() + 120_000;
    while (!finished) {
      if (Date.now() > loadDeadline) throw new Error('the claim load did not finish within 120 s');
      const scraped = await scrape(); // expects a 200: a fork slower than FORK_ANSWER_MS must not fail it
      scrapeTimes.push(scraped.ms);
      issuedSeen.push(sample(scraped.text, `stampede_claims_total{template="${template.id}",outcome="issued"}`) ?? 0);
      await new Promise((resolve) => setTimeout(resolve, 100)); // pacing of the scrapes, not a wait for anything
    }
    const result = await loadDone;
    expect(result.errors).toBe(0);
    expect(result.non2xx, JSON.stringify(result.statusCodeStats)).toBe(0);
    expect(result['2xx']).toBe(2_000);
    expect(scrapeTimes.length).toBeGreaterThanOrEqual(3); // the load takes ~1 s on 2 cores
    expect(issuedSeen, `scrape times (ms): ${scrapeTimes.map(Math.round).join(', ')}`).toEqual([...issuedSeen].sort((x, y) => x - y));
    await scrapeUntil(`stampede_claims_total{template="${template.id}",outcome="issued"}`, result['2xx']);

    // A crashed API fork is forked again and counted; the totals it contributed stay.
    process.kill(apiPids[0]!, 'SIGKILL');
    await stampede.waitForOutput(/forking it again/, 30_000);
    await stampede.waitForOutput(new RegExp(`"pid":(?!${apiPids.join('|')})\\d+,[^\\n]*"msg":"Server listening`), 60_000);
    const afterCrash = { text: await scrapeUntil('stampede_process_restarts_total{role="api"}', 1) };
    expect(sample(afterCrash.text, liveSeries)).toBe(N);
    expect(sample(afterCrash.text, `stampede_claims_total{template="${template.id}",outcome="issued"}`)).toBe(result['2xx']);

    const forkPids = [...new Set([...stampede.output().matchAll(/"pid":(\d+),/g)].map((match) => Number(match[1])))].filter((pid) => pid !== stampede!.child.pid);
    stampede.child.kill('SIGTERM');
    expect(await stampede.exited).toBe(0);
    expect(forkPids.filter(processAlive)).toEqual([]);
  }, 240_000);
});
