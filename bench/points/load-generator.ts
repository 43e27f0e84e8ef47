// The bench:points load generator, run as its own process by run.ts so its CPU is not the
// server's. `connections` keep-alive sockets (one per concurrent user) take requests from one
// shared queue in plan order; a request planned as retried is sent again on the same socket, with
// the same Idempotency-Key and body, as soon as its first answer arrives. Every answer is kept for
// the exact verification in verify.ts.
// Input: the path of a JSON LoadPlan as argv[2]. Output: answers written to plan.answersFile and
// one JSON LoadResult line on stdout.
import { readFile, writeFile } from 'node:fs/promises';
import { runClosedLoop, timedRequest, type ClosedLoopTarget, type Sent } from '../lib/closed-loop.ts';
import type { LoadFiles } from '../lib/load-process.ts';
import { jsonPost, type KeepAliveConnection } from '../lib/keepalive-client.ts';
import type { PlannedRequest } from './workload.ts';

/** The first answer, and the retry's when the request was retried. */
export type Answer = [first: Sent, retry?: Sent];

export interface LoadPlan extends ClosedLoopTarget, LoadFiles {
  /** `${pathPrefix}/v1/points/${kind}` */
  readonly pathPrefix: string;
  readonly apiKey: string;
}

export interface LoadResult {
  readonly requests: number;
  readonly durationMs: number;
  readonly cpuSeconds: number;
}

export async function generateLoad(plan: LoadPlan): Promise<LoadResult> {
  const requests = JSON.parse(await readFile(plan.requestsFile, 'utf8')) as PlannedRequest[];
  const answers = new Array<Answer>(requests.length);
  let sent = 0;
  const send = (connection: KeepAliveConnection, raw: Buffer): Promise<Sent> => {
    sent++;
    return timedRequest(connection, raw);
  };

  const { durationMs, cpuSeconds } = await runClosedLoop(plan, requests.length, async (connection, i) => {
    const request = requests[i]!;
    const raw = jsonPost(plan.host, plan.port, `${plan.pathPrefix}/v1/points/${request.kind}`,
      { 'x-api-key': plan.apiKey, 'idempotency-key': request.key }, request.body);
    const first = await send(connection, raw);
    answers[i] = request.retry ? [first, await send(connection, raw)] : [first];
  });
  await writeFile(plan.answersFile, JSON.stringify(answers));
  return { requests: sent, durationMs, cpuSeconds };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const plan = JSON.parse(await readFile(process.argv[2] ?? '', 'utf8')) as LoadPlan;
  process.stdout.write(`${JSON.stringify(await generateLoad(plan))}\n`);
}
