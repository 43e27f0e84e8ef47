// A thin client for the points routes in tests: every mutation gets a fresh Idempotency-Key unless
// one is given, and answers are returned as {status, body, replayed}.
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';

export interface PointsAnswer<T = Record<string, unknown>> {
  readonly status: number;
  readonly body: T;
  readonly replayed: boolean;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are asserted field by field in tests
type Body = Record<string, any>;

export function pointsClient(app: FastifyInstance, apiHeaders: Record<string, string>) {
  const post = async (url: string, payload: Body | undefined, key: string | null = randomUUID()): Promise<PointsAnswer<Body>> => {
    const response = await app.inject({
      method: 'POST', url,
      headers: { ...apiHeaders, ...(key === null ? {} : { 'idempotency-key': key }) },
      ...(payload === undefined ? {} : { payload }),
    });
    return { status: response.statusCode, body: response.json<Body>(), replayed: response.headers['idempotent-replayed'] === 'true' };
  };
  const get = async (url: string): Promise<Body> => {
    const response = await app.inject({ method: 'GET', url, headers: apiHeaders });
    if (response.statusCode !== 200) throw new Error(`GET ${url}: ${response.statusCode} ${response.body}`);
    return response.json<Body>();
  };
  return {
    earn: (body: Body, key?: string | null) => post('/v1/points/earn', body, key),
    use: (body: Body, key?: string | null) => post('/v1/points/use', body, key),
    cancel: (transactionId: string, body?: Body, key?: string | null) => post(`/v1/points/transactions/${transactionId}/cancel`, body, key),
    transfer: (body: Body, key?: string | null) => post('/v1/points/transfer', body, key),
    balance: (userId: string, pointType?: string) =>
      get(`/v1/users/${encodeURIComponent(userId)}/points${pointType ? `?pointType=${pointType}` : ''}`),
    transactions: (userId: string, query = '') => get(`/v1/users/${encodeURIComponent(userId)}/points/transactions${query}`),
  };
}
