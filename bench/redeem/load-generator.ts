// The redeem load generator, run as its own process by run.ts so its CPU is not the server's.
// `connections` keep-alive sockets take requests from one shared queue in plan order, so two
// requests placed next to each other in the plan (a contended pair: two orders on one coupon)
// are in flight at the same time on two sockets. Every answer is kept, in plan order, for the
// exact verification in verify.ts.
// Input: the path of a JSON LoadPlan as argv[2]. Output: answers written to plan.answersFile and
// one JSON LoadResult line on stdout.
import { readFile, writeFile } from 'node:fs/promises';
import { runClosedLoop, timedRequest, type ClosedLoopTarget, type Sent } from '../lib/closed-loop.ts';
import type { LoadFiles } from '../lib/load-process.ts';
import { jsonPost } from '../lib/keepalive-client.ts';

/** One redemption: [couponId, userId, orderId, orderAmount]. */
export type PlannedRedeem = [couponId: string, userId: string, orderId: string, orderAmount: number];
export type Answer = Sent;

export interface LoadPlan extends ClosedLoopTarget, LoadFiles {
  /** `${pathPrefix}/v1/coupons/${couponId}/redeem` */
  readonly pathPrefix: string;
  readonly headers: Record<string, string>;
}

export interface LoadResult {
  readonly requests: number;
  readonly durationMs: number;
  readonly requestsPerSecond: number;
  readonly cpuSeconds: number;
}

export async function generateLoad(plan: LoadPlan): Promise<LoadResult> {
  const requests = JSON.parse(await readFile(plan.requestsFile, 'utf8')) as PlannedRedeem[];
  const answers: Answer[] = new Array<Answer>(requests.length);
  const { durationMs, cpuSeconds } = await runClosedLoop(plan, requests.length, async (connection, i) => {
    const [couponId, userId, orderId, orderAmount] = requests[i]!;
    const raw = jsonPost(plan.host, plan.port, `${plan.pathPrefix}/v1/coupons/${couponId}/redeem`, plan.headers, { userId, orderId, orderAmount });
    answers[i] = await timedRequest(connection, raw);
  });
  await writeFile(plan.answersFile, JSON.stringify(answers));
  return { requests: requests.length, durationMs, requestsPerSecond: requests.length / (durationMs / 1000), cpuSeconds };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const plan = JSON.parse(await readFile(process.argv[2] ?? '', 'utf8')) as LoadPlan;
  process.stdout.write(`${JSON.stringify(await generateLoad(plan))}\n`);
}
