// The closed-loop mixed load of a chaos run, and its history: every request with its answer (or
// "none": the connection failed or timed out). Each client owns its users, so the operations on a
// coupon or a wallet are sequential and the checkers can tell what the final state must be.
import { seededRandom } from './schedule.ts';

export type Answer = number | 'none';

export interface Attempt {
  readonly client: number;
  readonly op: string;
  readonly api: number;
  readonly status: Answer;
  readonly code?: string;
  readonly t: number;
}

export interface ClaimRecord { readonly templateId: string; readonly userId: string; readonly couponId: string }
export interface CouponOp { readonly couponId: string; readonly op: 'redeem' | 'cancel'; readonly orderId: string; readonly answer: Answer; readonly code?: string }
export interface PointsCall {
  readonly key: string;
  readonly path: string;
  readonly body: Record<string, unknown>;
  /** The definitive answer (201 or 409), when one came. */
  status?: number;
  answer?: unknown;
}

export interface History {
  readonly attempts: Attempt[];
  readonly claims: ClaimRecord[];
  readonly couponOps: CouponOp[];
  readonly points: PointsCall[];
}

export interface LoadTarget {
  readonly apis: readonly string[];
  readonly apiKey: string;
  readonly templates: ReadonlyArray<{ id: string }>;
  readonly usersPerClient: number;
}

const REQUEST_TIMEOUT_MS = 10_000;
const RETRYABLE = (answer: Answer) => answer === 'none' || answer === 503 || answer === 500 || answer === 502;

export function createHistory(): History {
  return { attempts: [], claims: [], couponOps: [], points: [] };
}

export async function runClients(target: LoadTarget, history: History, options: { clients: number; seed: number; until: () => boolean }): Promise<void> {
  const started = Date.now();
  // Like a load balancer's health check: an API that refused a connection is skipped for a second.
  const downUntil = target.apis.map(() => 0);
  const chooseApi = () => {
    const up = target.apis.map((_, i) => i).filter((i) => downUntil[i]! <= Date.now());
    const from = up.length > 0 ? up : target.apis.map((_, i) => i);
    return from[Math.floor(Math.random() * from.length)]!;
  };

  await Promise.all(Array.from({ length: options.clients }, (_, c) => runClient(c)));

  async function send(c: number, op: string, method: string, path: string, body: unknown, extra: Record<string, string> = {}, api?: number) {
    const which = api ?? chooseApi();
    let status: Answer = 'none';
    let json: Record<string, unknown> | undefined;
    try {
      const response = await fetch(`${target.apis[which]}${path}`, {
        method,
        headers: { 'x-api-key': target.apiKey, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...extra },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      status = response.status;
      json = await response.json().catch(() => undefined) as Record<string, unknown> | undefined;
    } catch (error) {
      status = 'none';
      if ((error as { cause?: { code?: string } }).cause?.code === 'ECONNREFUSED') downUntil[which] = Date.now() + 1_000;
      await delay(100); // a refused connection fails at once: do not spin against a process that is down
    }
    const code = (json?.error as { code?: string } | undefined)?.code;
    history.attempts.push({ client: c, op, api: which, status, ...(code ? { code } : {}), t: Date.now() - started });
    return { status, json, code };
  }

  async function runClient(c: number): Promise<void> {
    const random = seededRandom(options.seed * 1_000 + c);
    const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)]!;
    const users = Array.from({ length: target.usersPerClient }, (_, u) => `c${c}-u${u}`);
    const coupons: Array<{ id: string; userId: string; state: 'ISSUED' | 'USED' | 'UNKNOWN'; orderId?: string }> = [];
    const earned: string[] = [];
    let n = 0;

    const pointsCall = async (path: string, body: Record<string, unknown>) => {
      const call: PointsCall = { key: `chaos-${options.seed}-${c}-${n}`, path, body };
      history.points.push(call);
      // Retried under the same key until a definitive answer, as the API asks clients to.
      for (let attempt = 0; attempt < 8 && !options.until(); attempt++) {
        const answer = await send(c, path, 'POST', path, body, { 'idempotency-key': call.key });
        if (!RETRYABLE(answer.status)) {
          call.status = answer.status as number;
          call.answer = answer.json;
          return answer;
        }
        await delay(200 + attempt * 200);
      }
      return undefined;
    };

    while (!options.until()) {
      n += 1;
      const roll = random();
      if (roll < 0.4) {
        const template = pick(target.templates);
        const userId = pick(users);
        const answer = await send(c, 'claim', 'POST', `/v1/coupon-templates/${template.id}/claims`, { userId });
        if (answer.status === 201) {
          const couponId = answer.json!.couponId as string;
          history.claims.push({ templateId: template.id, userId, couponId });
          coupons.push({ id: couponId, userId, state: 'ISSUED' });
        }
      } else if (roll < 0.55 && coupons.length > 0) {
        const coupon = pick(coupons);
        if (coupon.state === 'UNKNOWN') {
          const read = await send(c, 'read-coupon', 'GET', `/v1/coupons/${coupon.id}`, undefined);
          if (read.status === 200) {
            coupon.state = read.json!.status === 'USED' ? 'USED' : 'ISSUED';
            coupon.orderId = read.json!.orderId as string | undefined;
          }
          continue;
        }
        const op = coupon.state === 'ISSUED' ? 'redeem' : 'cancel';
        const orderId = op === 'redeem' ? `o-${c}-${n}` : coupon.orderId!;
        const answer = op === 'redeem'
          ? await send(c, 'redeem', 'POST', `/v1/coupons/${coupon.id}/redeem`, { userId: coupon.userId, orderId, orderAmount: 10_000 })
          : await send(c, 'cancel-redemption', 'POST', `/v1/coupons/${coupon.id}/cancel-redemption`, { orderId });
        history.couponOps.push({ couponId: coupon.id, op, orderId, answer: answer.status, ...(answer.code ? { code: answer.code } : {}) });
        if (answer.status === 200) {
          coupon.state = op === 'redeem' ? 'USED' : 'ISSUED';
          coupon.orderId = op === 'redeem' ? orderId : undefined;
        } else if (RETRYABLE(answer.status)) coupon.state = 'UNKNOWN';
      } else if (roll < 0.95) {
        const kind = random();
        const userId = pick(users);
        if (kind < 0.45) {
          const answer = await pointsCall('/v1/points/earn', { userId, amount: 10, reason: 'chaos' });
          if (answer?.status === 201) earned.push(answer.json!.transactionId as string);
        } else if (kind < 0.75) {
          await pointsCall('/v1/points/use', { userId, amount: 3 });
        } else if (kind < 0.9) {
          const toUserId = pick(users);
          if (toUserId !== userId) await pointsCall('/v1/points/transfer', { fromUserId: userId, toUserId, amount: 2 });
        } else if (earned.length > 0) {
          const transactionId = earned.splice(Math.floor(random() * earned.length), 1)[0]!;
          await pointsCall(`/v1/points/transactions/${transactionId}/cancel`, { reason: 'chaos' });
        }
      } else {
        await send(c, 'balance', 'GET', `/v1/users/${pick(users)}/points`, undefined);
      }
    }
  }
}

/** After the run: every points call still without a definitive answer, retried under its key until it has one. */
export async function settlePointsCalls(target: LoadTarget, history: History, deadlineMs: number): Promise<number> {
  let settled = 0;
  for (const call of history.points) {
    if (call.status !== undefined) continue;
    for (let attempt = 0; call.status === undefined; attempt++) {
      if (Date.now() > deadlineMs) throw new Error(`points call ${call.key} got no definitive answer`);
      try {
        const response = await fetch(`${target.apis[attempt % target.apis.length]}${call.path}`, {
          method: 'POST', body: JSON.stringify(call.body), signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
          headers: { 'x-api-key': target.apiKey, 'content-type': 'application/json', 'idempotency-key': call.key },
        });
        if (!RETRYABLE(response.status)) { call.status = response.status; call.answer = await response.json(); settled += 1; }
      } catch { /* retried */ }
      if (call.status === undefined) await delay(250);
    }
  }
  return settled;
}

export const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
