// Two real `stampede serve` processes in distributed mode on one PostgreSQL and one Redis (what
// several hosts, or STAMPEDE_PROCESSES, run): the stock of a claim event is exact across both, a
// pause or resume made through one is obeyed by the other at its very next claim, a partner's
// rate limit is one budget across both, and a key revoked through one is refused by the other once
// its local cache lifetime (STAMPEDE_API_KEY_CACHE_MS) has passed.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../../src/infra/free-port.ts';
import { spawnStampede, type StampedeProcess } from '../harness/spawn-stampede.ts';
import { ADMIN_TOKEN, templateBody } from '../harness/test-app.ts';
import { waitFor } from '../harness/wait-for.ts';

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

describe('two API processes sharing PostgreSQL and Redis', () => {
  const processes: StampedeProcess[] = [];
  let bases: [string, string];

  beforeAll(async () => {
    const start = async () => {
      const port = await freePort();
      const p = spawnStampede(['serve'], {
        DATABASE_URL: inject('databaseUrl'), REDIS_URL: inject('redisUrl'), STAMPEDE_ADMIN_TOKEN: ADMIN_TOKEN,
        PORT: String(port), HOST: '127.0.0.1', STAMPEDE_WORKERS: 'off', STAMPEDE_API_KEY_CACHE_MS: '1000', LOG_LEVEL: 'warn',
      });
      processes.push(p);
      const base = `http://127.0.0.1:${port}`;
      await waitFor(() => fetch(`${base}/health/ready`).then((r) => r.ok, () => false), { timeoutMs: 90_000, what: `serve on ${port}`, intervalMs: 100 });
      return base;
    };
    bases = [await start(), await start()];
  }, 180_000);
  afterAll(async () => {
    for (const p of processes) if (p.child.exitCode === null) p.child.kill('SIGTERM');
    await Promise.all(processes.map((p) => p.exited));
  });

  const call = async (base: string, method: string, url: string, headers: Record<string, string>, body?: unknown) => {
    const response = await fetch(`${base}${url}`, {
      method, headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) as Record<string, any> : {} }; // eslint-disable-line @typescript-eslint/no-explicit-any
  };
  const partner = async (rateLimitPerSecond?: number) => {
    const created = await call(bases[0], 'POST', '/v1/partners', admin, { name: `two-${Date.now()}-${Math.random()}`, ...(rateLimitPerSecond ? { rateLimitPerSecond } : {}) });
    expect(created.status).toBe(201);
    return { id: created.body.id as string, headers: { 'x-api-key': created.body.apiKey as string } };
  };

  it('issues exactly the stock across both processes', async () => {
    const { headers } = await partner();
    const template = await call(bases[0], 'POST', '/v1/coupon-templates', headers, templateBody({ totalQuantity: 50 }));
    expect(template.status).toBe(201);
    const answers = await Promise.all(Array.from({ length: 160 }, (_, i) =>
      call(bases[i % 2]!, 'POST', `/v1/coupon-templates/${template.body.id}/claims`, headers, { userId: `user-${i}` })));
    const outcome = (a: { status: number; body: Record<string, any> }) => (a.status === 201 ? 201 : a.body.error?.code); // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(answers.filter((a) => outcome(a) === 201)).toHaveLength(50);
    expect(answers.filter((a) => outcome(a) === 'SOLD_OUT')).toHaveLength(110);
    // Both processes issued some: the stock was shared, not split.
    expect(new Set(answers.map((a, i) => (a.status === 201 ? i % 2 : -1)).filter((p) => p >= 0)).size).toBe(2);
  });

  it('a pause made through one process is obeyed by the other at its next claim, and a resume likewise', async () => {
    // Each process has opened the event and holds the template in its cache before the change: a
    // process that decided from its own copy of the settings would go on issuing.
    const { headers } = await partner();
    const template = await call(bases[0], 'POST', '/v1/coupon-templates', headers, templateBody({ totalQuantity: 100 }));
    expect(template.status).toBe(201);
    const claims = `/v1/coupon-templates/${template.body.id}/claims`;
    const pause = (base: string, paused: boolean) => call(base, 'PATCH', `/v1/coupon-templates/${template.body.id}`, headers, { paused });
    expect((await call(bases[0], 'POST', claims, headers, { userId: 'before-a' })).status).toBe(201);
    expect((await call(bases[1], 'POST', claims, headers, { userId: 'before-b' })).status).toBe(201);

    const paused = await pause(bases[0], true);
    expect(paused.status, JSON.stringify(paused.body)).toBe(200);
    const refused = await call(bases[1], 'POST', claims, headers, { userId: 'while-paused' });
    expect([refused.status, refused.body.error?.code]).toEqual([409, 'CLAIM_PAUSED']);

    const resumed = await pause(bases[1], false);
    expect(resumed.status, JSON.stringify(resumed.body)).toBe(200);
    const issued = await call(bases[0], 'POST', claims, headers, { userId: 'after-resume' });
    expect(issued.status, JSON.stringify(issued.body)).toBe(201);
  });

  it('counts one rate limit across both processes', async () => {
    // A fresh key at 1 request/s: its first request, through process A, opens the key's window
    // and spends its budget; one sent at once through process B is refused. With a budget per
    // process, B's first request would pass. (Should the machine stall a whole second between the
    // two, the window ends and B may pass: another fresh key is tried.)
    let refusedByOther = false;
    for (let round = 0; round < 3 && !refusedByOther; round++) {
      const { headers } = await partner(1);
      expect((await call(bases[0], 'GET', '/v1/users/u/points', headers)).status).toBe(200);
      const other = await call(bases[1], 'GET', '/v1/users/u/points', headers);
      if (other.status === 429) {
        expect(other.body.error.code).toBe('RATE_LIMITED');
        refusedByOther = true;
      }
    }
    expect(refusedByOther).toBe(true);
  });

  it('a key revoked through one process is refused by the other', async () => {
    const { id } = await partner();
    const key = await call(bases[0], 'POST', `/v1/partners/${id}/api-keys`, admin);
    expect(key.status).toBe(201);
    const headers = { 'x-api-key': key.body.apiKey as string };
    expect((await call(bases[1], 'GET', '/v1/users/u/points', headers)).status).toBe(200); // cached by B
    expect((await call(bases[0], 'DELETE', `/v1/api-keys/${key.body.id}`, admin)).status).toBe(204);
    expect((await call(bases[0], 'GET', '/v1/users/u/points', headers)).status).toBe(401); // at once where it was revoked
    // B drops its cached principal after STAMPEDE_API_KEY_CACHE_MS (1 s here), then finds the
    // tombstone in Redis (its copy there lives 10 minutes: without the tombstone B would accept it).
    await waitFor(async () => (await call(bases[1], 'GET', '/v1/users/u/points', headers)).status === 401, { timeoutMs: 20_000, what: 'process B to refuse the revoked key' });
  });
});
