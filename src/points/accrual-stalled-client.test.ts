// A client that stops sending in the middle of an accrual body, or sends it a byte at a time, must
// not hold the staging slot (accrual-routes.ts) and with it every later accrual post of the
// process: the idle timeout (STAMPEDE_IDLE_TIMEOUT_MS) closes a silent connection, and a body not
// received within that time of taking the slot is cut off.
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPartner, createTestApp, type TestApp } from '../../test/harness/test-app.ts';
import { waitFor } from '../../test/harness/wait-for.ts';

/**
 * The server-side socket of each API key's accrual post that holds the staging slot: preParsing
 * runs once every onRequest hook, the route's (which takes the slot) included, has finished.
 */
function trackSlotHolders(app: FastifyInstance, holders: Map<string, net.Socket>): void {
  app.addHook('preParsing', async (request) => {
    if (request.method === 'POST' && request.url === '/v1/points/accruals') holders.set(String(request.headers['x-api-key']), request.raw.socket);
  });
}

describe('accrual post from a stalled client', () => {
  let t: TestApp;
  let base: string;
  const holders = new Map<string, net.Socket>();
  beforeAll(async () => {
    t = await createTestApp({ env: { STAMPEDE_IDLE_TIMEOUT_MS: '1000' }, beforeReady: (app) => trackSlotHolders(app, holders) });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  });
  afterAll(async () => { await t.close(); });

  const stalledPost = async (apiKey: string) => {
    const socket = net.connect((t.app.server.address() as AddressInfo).port, '127.0.0.1');
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(['POST /v1/points/accruals HTTP/1.1', 'host: stampede', `x-api-key: ${apiKey}`,
      'content-type: application/json', 'content-length: 100000', '', '{"items":[{"userId":"u-1",'].join('\r\n'));
    await waitFor(() => holders.has(apiKey), { what: 'the stalled post to take the staging slot' });
    // The server destroys the socket before it hands the slot on, so a staged next post sees it so.
    return { socket, closed, cutOff: () => holders.get(apiKey)!.destroyed };
  };
  /** Another client's post, on a connection of its own (a pooled one may have been idle-closed). */
  const nextPost = async (headers: Record<string, string>, key: string) => {
    const status = await new Promise<number>((resolve, reject) => {
      const request = http.request(`${base}/v1/points/accruals`, { method: 'POST', agent: false, headers: { ...headers, 'content-type': 'application/json' } }, (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      });
      request.on('error', reject);
      request.end(JSON.stringify({ items: [{ userId: 'u-2', amount: 5, idempotencyKey: key }] }));
    });
    expect(status).toBe(202);
  };

  it('is cut off after the idle timeout when it falls silent, and the next post is staged', async () => {
    const partner = await createPartner(t.app);
    const { closed, cutOff } = await stalledPost(partner.apiKey);
    await nextPost(partner.headers, 'stalled-test-1');
    expect(cutOff()).toBe(true); // staged because the silent post was cut off (not after waiting 20 s: a 503)
    await closed;
  });

  it('is cut off when its body has not arrived in that time, however it trickles', async () => {
    const partner = await createPartner(t.app);
    const { socket, closed, cutOff } = await stalledPost(partner.apiKey);
    const trickle = setInterval(() => socket.write(' '), 300); // never silent for the 1 s idle timeout
    try {
      await nextPost(partner.headers, 'trickle-test-1');
      expect(cutOff()).toBe(true);
      await closed;
    } finally {
      clearInterval(trickle);
    }
  });
});

describe('accrual posts waiting for the staging slot', () => {
  let t: TestApp;
  const holders = new Map<string, net.Socket>();
  const serverSockets = new Set<net.Socket>();
  beforeAll(async () => {
    // A silent client keeps the slot for up to 25 s here: longer than a post may wait for it (20 s).
    t = await createTestApp({ env: { STAMPEDE_IDLE_TIMEOUT_MS: '25000' }, beforeReady: (app) => trackSlotHolders(app, holders) });
    t.app.server.on('connection', (socket: net.Socket) => serverSockets.add(socket));
    await t.app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => { await t.close(); });

  const port = () => (t.app.server.address() as AddressInfo).port;
  /** Posts waiting for the slot: the route lifts its connection's idle timeout while it waits. */
  const waitingAtTheGate = () => [...serverSockets].filter((socket) => !socket.destroyed && socket.timeout === 0).length;
  const post = (headers: Record<string, string>, key: string) => new Promise<{ status: number; code?: string; retryAfter?: string; ms: number }>((resolve, reject) => {
    const started = Date.now();
    const request = http.request(`http://127.0.0.1:${port()}/v1/points/accruals`, { method: 'POST', agent: false, headers: { ...headers, 'content-type': 'application/json' } }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => { body += chunk; }).on('end', () => {
        const retryAfter = response.headers['retry-after'];
        resolve({ status: response.statusCode ?? 0, code: (JSON.parse(body) as { error?: { code: string } }).error?.code, ms: Date.now() - started, ...(retryAfter ? { retryAfter } : {}) });
      });
    });
    request.on('error', reject);
    request.end(JSON.stringify({ items: [{ userId: 'u-2', amount: 5, idempotencyKey: key }] }));
  });

  it('bounds the waiters of one partner (429) and how long any post waits (503), both with Retry-After', async () => {
    const holder = await createPartner(t.app);
    const other = await createPartner(t.app);
    const socket = net.connect(port(), '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(['POST /v1/points/accruals HTTP/1.1', 'host: stampede', `x-api-key: ${holder.apiKey}`,
      'content-type: application/json', 'content-length: 100000', '', '{"items":['].join('\r\n'));
    try {
      // The stalled post takes the slot: posts of the same partner then wait, four at most.
      await waitFor(() => holders.has(holder.apiKey), { what: 'the stalled post to take the staging slot' });
      const waiting: Array<Promise<Awaited<ReturnType<typeof post>>>> = [];
      for (let i = 0; ; i++) {
        if (i > 10) throw new Error('no post of the holder was ever refused for waiting');
        const attempt = post(holder.headers, `holder-${i}`);
        let answer: Awaited<typeof attempt> | undefined;
        void attempt.then((settled) => { answer = settled; }, () => undefined);
        const answered = await waitFor(() => answer ?? (waitingAtTheGate() > waiting.length && 'waiting'), { what: `post ${i} to be answered or to wait for the slot` });
        if (answered === 'waiting') {
          waiting.push(attempt);
        } else if (answered.status === 429) {
          expect(answered.code).toBe('BULK_UPLOAD_LIMIT_REACHED');
          expect(Number(answered.retryAfter)).toBeGreaterThan(0);
          break;
        }
      }
      expect(waiting.length).toBe(4);
      const timedOut = await post(other.headers, 'other-1');
      expect(timedOut).toMatchObject({ status: 503, code: 'BULK_UPLOADS_BUSY' });
      expect(Number(timedOut.retryAfter)).toBeGreaterThan(0);
      expect(timedOut.ms).toBeGreaterThanOrEqual(19_500);
      // Refused by the 20 s wait, while the silent post still held the slot (its 25 s idle timeout had not cut it).
      expect(holders.get(holder.apiKey)!.destroyed).toBe(false);
      expect((await Promise.all(waiting)).map((answer) => answer.status)).toEqual([503, 503, 503, 503]);
    } finally {
      socket.destroy();
    }
    // the slot is given back with the holder's connection
    const next = await waitFor(async () => {
      const answer = await post(other.headers, 'other-2');
      return answer.status === 202 && answer;
    }, { what: 'a post to be staged once the holder is gone', timeoutMs: 10_000 });
    expect(next.status).toBe(202);
  });
});
