// The bench:points load generator, run as its own process by run.ts so its CPU is not the
// server's. `connections` keep-alive sockets (one per concurrent user) take requests from one
// shared queue in plan order; a request planned as retried is sent again on the same socket, with
// the same Idempotency-Key and body, as soon as its first answer arrives. Every answer is kept for
// the exact verification in verify.ts.
// Input: the path of a JSON LoadPlan as argv[2]. Output: answers written to plan.answersFile and
// one JSON LoadResult line on stdout.
import { readFile, writeFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { jsonPost, openConnections, type KeepAliveConnection } from '../lib/keepalive-client.ts';
import type { PlannedRequest } from './workload.ts';

/** The HTTP status (0: no answer), the body (or the error) and the latency of one request. */
export type Sent = [status: number, body: string, latencyMs: number];
/** The first answer, and the retry's when the request was retried. */
export type Answer = [first: Sent, retry?: Sent];

export interface LoadPlan {
  readonly host: string;
  readonly port: number;
  /** `${pathPrefix}/v1/points/${kind}` */
  readonly pathPrefix: string;
  readonly apiKey: string;
  readonly connections: number;
  readonly timeoutMs: number;
  readonly requestsFile: string;
  readonly answersFile: string;
}

export interface LoadResult {
  readonly requests: number;
  readonly durationMs: number;
  readonly cpuSeconds: number;
}

export async function generateLoad(plan: LoadPlan): Promise<LoadResult> {
  const requests = JSON.parse(await readFile(plan.requestsFile, 'utf8')) as PlannedRequest[];
  const connections = await openConnections(plan.host, plan.port, plan.connections, plan.timeoutMs);
  const answers = new Array<Answer>(requests.length);
  let next = 0;
  let sent = 0;

  const send = async (connection: KeepAliveConnection, raw: Buffer): Promise<Sent> => {
    sent++;
    const sentAt = performance.now();
    const response = await connection.request(raw).catch((error: Error) => error);
    const latencyMs = performance.now() - sentAt;
    return response instanceof Error ? [0, response.message, latencyMs] : [response.status, response.body, latencyMs];
  };

  const lane = async (connection: KeepAliveConnection) => {
    for (let i = next++; i < requests.length; i = next++) {
      const request = requests[i]!;
      const raw = jsonPost(plan.host, plan.port, `${plan.pathPrefix}/v1/points/${request.kind}`,
        { 'x-api-key': plan.apiKey, 'idempotency-key': request.key }, request.body);
      const first = await send(connection, raw);
      answers[i] = request.retry ? [first, await send(connection, raw)] : [first];
    }
  };

  const cpuBefore = process.cpuUsage();
  const startedAt = performance.now();
  await Promise.all(connections.map(lane));
  const durationMs = performance.now() - startedAt;
  const cpu = process.cpuUsage(cpuBefore);
  for (const connection of connections) connection.close();
  await writeFile(plan.answersFile, JSON.stringify(answers));
  return { requests: sent, durationMs, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const plan = JSON.parse(await readFile(process.argv[2] ?? '', 'utf8')) as LoadPlan;
  process.stdout.write(`${JSON.stringify(await generateLoad(plan))}\n`);
}
