// A client that stops sending in the middle of an accrual body, or sends it a byte at a time, must
// not hold the staging slot (accrual-routes.ts) and with it every later accrual post of the
// process: the idle timeout (STAMPEDE_IDLE_TIMEOUT_MS) closes a silent connection, and a body not
// received within that time of taking the slot is cut off.
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPartner, createTestApp, type TestApp } from '../../test/harness/test-app.ts';

describe('accrual post from a stalled client', () => {
  let t: TestApp;
  let base: string;
  beforeAll(async () => {
    t = await createTestApp({ env: { STAMPEDE_IDLE_TIMEOUT_MS: '1000' } });
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
    await new Promise((resolve) => setTimeout(resolve, 200)); // its post has taken the staging slot
    return { socket, closed };
  };
  /** Another client's post, on a connection of its own (a pooled one may have been idle-closed). */
  const nextPost = async (headers: Record<string, string>, key: string) => {
    const started = Date.now();
    const status = await new Promise<number>((resolve, reject) => {
      const request = http.request(`${base}/v1/points/accruals`, { method: 'POST', agent: false, headers: { ...headers, 'content-type': 'application/json' } }, (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      });
      request.on('error', reject);
      request.end(JSON.stringify({ items: [{ userId: 'u-2', amount: 5, idempotencyKey: key }] }));
    });
    expect(status).toBe(202);
    return Date.now() - started;
  };

  it('is cut off after the idle timeout when it falls silent, and the next post is staged', async () => {
    const partner = await createPartner(t.app);
    const { closed } = await stalledPost(partner.apiKey);
    expect(await nextPost(partner.headers, 'stalled-test-1')).toBeLessThan(10_000);
    await closed;
  });

  it('is cut off when its body has not arrived in that time, however it trickles', async () => {
    const partner = await createPartner(t.app);
    const { socket, closed } = await stalledPost(partner.apiKey);
    const trickle = setInterval(() => socket.write(' '), 300); // never silent for the 1 s idle timeout
    try {
      expect(await nextPost(partner.headers, 'trickle-test-1')).toBeLessThan(10_000);
      await closed;
    } finally {
      clearInterval(trickle);
    }
  });
});
