// Embedded mode, crash mid-burst: `stampede serve` with its own embedded PostgreSQL at its durable
// settings (fsync, synchronous_commit and full_page_writes on: runtime.ts never passes `fast`) is
// SIGKILLed while claims flow, and so are its PostgreSQL processes, at once: nothing gets to flush
// on its way out, and the restart runs crash recovery from the WAL. Every coupon a client saw
// answered 201 is then a row, and the template's count matches its rows.
// What this proves: a process crash of both (what a kill -9 or an OOM kill does). It catches a 201
// sent before the commit reached the WAL (with `fast`, i.e. synchronous_commit off, it lost 9 of
// ~600); it cannot tell an fsync from a write to the page cache (both survive a process crash):
// power loss is out of its reach.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/infra/free-port.ts';
import { spawnStampede, type StampedeProcess } from '../harness/spawn-stampede.ts';
import { templateBody } from '../harness/test-app.ts';
import { waitFor } from '../harness/wait-for.ts';

const CLIENTS = 16;

describe('embedded mode: serve and its PostgreSQL killed mid-burst of claims', () => {
  const processes: StampedeProcess[] = [];
  let dataDir: string | undefined;
  afterAll(async () => {
    for (const p of processes) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
    await Promise.all(processes.map((p) => p.exited));
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('every coupon answered 201 is a row after the restart', async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'stampede-e2e-durable-'));
    const [port, pgPort] = [await freePort(), await freePort()];
    const env = { STAMPEDE_DATA_DIR: dataDir, PORT: String(port), STAMPEDE_EMBEDDED_PG_PORT: String(pgPort), LOG_LEVEL: 'warn' };
    const base = `http://127.0.0.1:${port}`;
    const start = async () => {
      const p = spawnStampede(['serve'], env);
      processes.push(p);
      await waitFor(() => fetch(`${base}/health/ready`).then((r) => r.ok, () => false), { timeoutMs: 120_000, what: `serve ready:\n${p.output()}`, intervalMs: 100 });
      return p;
    };

    const first = await start();
    const adminToken = readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
    const post = async (url: string, headers: Record<string, string>, body: unknown) =>
      fetch(`${base}${url}`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const partner = await (await post('/v1/partners', { authorization: `Bearer ${adminToken}` }, { name: 'durable' })).json() as { apiKey: string };
    const headers = { 'x-api-key': partner.apiKey };
    const created = await post('/v1/coupon-templates', headers, templateBody({ totalQuantity: 1_000_000 }));
    expect(created.status).toBe(201);
    const templateId = (await created.json() as { id: string }).id;

    // The database, reached the way a tool would (TCP on 127.0.0.1, the generated password).
    const password = readFileSync(path.join(dataDir, 'pg-password'), 'utf8').trim();
    const dbUrl = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${pgPort}/stampede`;
    const postgresPids = async (): Promise<number[]> => {
      const client = new pg.Client({ connectionString: dbUrl });
      await client.connect();
      try {
        const dir = (await client.query<{ dir: string }>('SELECT current_setting(\'data_directory\') AS dir')).rows[0]!.dir;
        const postmaster = Number(readFileSync(path.join(dir, 'postmaster.pid'), 'utf8').split('\n')[0]);
        const children = readFileSync(`/proc/${postmaster}/task/${postmaster}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
        return [postmaster, ...children];
      } finally {
        await client.end();
      }
    };

    const acknowledged: string[] = [];
    let refused = 0;
    let stopped = false;
    let next = 0;
    const clients = Array.from({ length: CLIENTS }, async () => {
      while (!stopped) {
        try {
          const response = await post(`/v1/coupon-templates/${templateId}/claims`, headers, { userId: `user-${next++}` });
          const body = await response.json() as { couponId?: string };
          if (response.status === 201) acknowledged.push(body.couponId!);
          else refused++;
        } catch {
          return; // the server is gone: this client's last claim has no answer, so no promise
        }
      }
    });

    await waitFor(() => acknowledged.length >= 500, { timeoutMs: 90_000, what: 'claims before the kill' });
    const pids = await postgresPids();
    const acknowledgedBeforeKill = acknowledged.length;
    // Both at once, claims still in flight: the server cannot answer more, PostgreSQL cannot flush.
    first.child.kill('SIGKILL');
    for (const pid of pids) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
    }
    expect(await first.exited).toBe('SIGKILL');
    stopped = true;
    await Promise.all(clients);
    expect(refused).toBe(0);
    expect(acknowledged.length).toBeGreaterThanOrEqual(acknowledgedBeforeKill);

    const second = await start();
    const client = new pg.Client({ connectionString: dbUrl });
    await client.connect();
    try {
      const { rows } = await client.query<{ id: string }>('SELECT id FROM coupons WHERE template_id = $1', [templateId]);
      const persisted = new Set(rows.map((row) => row.id));
      expect(acknowledged.filter((id) => !persisted.has(id))).toEqual([]);
      const { rows: [template] } = await client.query<{ issued_count: number }>('SELECT issued_count FROM coupon_templates WHERE id = $1', [templateId]);
      expect(template!.issued_count).toBe(rows.length);
    } finally {
      await client.end();
    }
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  }, 240_000);
});
