// A client that stops sending in the middle of an accrual body must not hold the staging slot
// (accrual-routes.ts) and with it every later accrual post of the process: the idle timeout
// (STAMPEDE_IDLE_TIMEOUT_MS) closes its connection.
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

  it('is cut off after the idle timeout, and the next post is staged', async () => {
    const partner = await createPartner(t.app);
    const stalled = net.connect((t.app.server.address() as AddressInfo).port, '127.0.0.1');
    const closed = new Promise<void>((resolve) => stalled.once('close', () => resolve()));
    stalled.on('error', () => undefined);
    await new Promise<void>((resolve) => stalled.once('connect', () => resolve()));
    stalled.write(['POST /v1/points/accruals HTTP/1.1', 'host: stampede', `x-api-key: ${partner.headers['x-api-key']}`,
      'content-type: application/json', 'content-length: 100000', '', '{"items":[{"userId":"u-1",'].join('\r\n'));
    await new Promise((resolve) => setTimeout(resolve, 200)); // its post has taken the staging slot

    const started = Date.now();
    const next = await fetch(`${base}/v1/points/accruals`, {
      method: 'POST', headers: { ...partner.headers, 'content-type': 'application/json' },
      body: JSON.stringify({ items: [{ userId: 'u-2', amount: 5, idempotencyKey: 'stalled-test-1' }] }),
    });
    expect(next.status).toBe(202);
    await closed;
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
