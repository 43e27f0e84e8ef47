// SIGTERM to a real `stampede serve` (embedded PostgreSQL) while a bulk job stages a partner's SQL
// source that takes minutes: the process exits 0 within its shutdown budget and its PostgreSQL is
// stopped, and so is the source's statement.
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../../src/infra/free-port.ts';
import { waitFor, withDeadline } from '../harness/wait-for.ts';
import { isAlive, spawnStampede, type StampedeProcess } from '../harness/spawn-stampede.ts';
import { createSourceDatabase, type TestSourceDatabase } from '../harness/sql-source.ts';
import { templateBody } from '../harness/test-app.ts';

describe('stampede serve stopped while a job stages its SQL source', () => {
  let source: TestSourceDatabase;
  const dirs: string[] = [];
  const started: StampedeProcess[] = [];
  beforeAll(async () => {
    source = await createSourceDatabase(inject('databaseUrl'));
  });
  afterAll(async () => {
    for (const server of started) if (server.child.exitCode === null) server.child.kill('SIGKILL');
    await source.drop();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('exits 0 with PostgreSQL stopped, within the shutdown budget', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'stampede-e2e-source-'));
    dirs.push(dataDir);
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const env = { STAMPEDE_DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1', STAMPEDE_SOURCE_STATEMENT_TIMEOUT_MS: '120000', STAMPEDE_SHUTDOWN_TIMEOUT_MS: '10000' };
    const server = spawnStampede(['serve'], env);
    started.push(server);
    await server.waitForOutput(/Server listening/, 90_000);
    const admin = { authorization: `Bearer ${(await readFile(path.join(dataDir, 'admin-token'), 'utf8')).trim()}`, 'content-type': 'application/json' };
    const call = async (method: string, url: string, headers: Record<string, string>, body?: unknown) => {
      const response = await fetch(`${base}${url}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
      return { status: response.status, body: await response.json() as Record<string, unknown> };
    };

    const partner = await call('POST', '/v1/partners', admin, { name: 'Slow source' });
    const key = { 'x-api-key': String(partner.body.apiKey), 'content-type': 'application/json' };
    expect((await call('PUT', `/v1/partners/${String(partner.body.id)}/sql-source`, admin, { url: source.url })).status).toBe(200);
    const template = await call('POST', '/v1/coupon-templates', key, templateBody({ totalQuantity: null }));
    // Every row sleeps 30 s: the first FETCH would take minutes.
    const accepted = await call('POST', `/v1/coupon-templates/${String(template.body.id)}/distributions`, key,
      { source: { type: 'sql', query: `SELECT 'u-' || g FROM generate_series(1, 10) g WHERE pg_sleep(30) IS NOT NULL` } });
    expect(accepted.status).toBe(202);
    const sourceDb = new pg.Client({ connectionString: inject('databaseUrl') });
    await sourceDb.connect();
    try {
      await waitFor(async () => (await sourceDb.query(
        `SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND application_name = 'stampede-source' AND query LIKE 'FETCH%'`, [source.database])).rowCount! > 0,
      { timeoutMs: 60_000, what: 'the job to read its source' });

      const postmasterPid = Number(readFileSync(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
      expect(isAlive(postmasterPid)).toBe(true);
      server.child.kill('SIGTERM');
      // The first row alone sleeps 30 s: a shutdown that waited for the source would miss this deadline.
      expect(await withDeadline(server.exited, 25_000, 'the server exiting on SIGTERM')).toBe(0);
      await waitFor(async () => !isAlive(postmasterPid), { timeoutMs: 10_000, what: 'the embedded PostgreSQL to stop' });
      // the source's statement was cancelled too, not left sleeping for minutes
      await waitFor(async () => (await sourceDb.query(
        `SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND application_name = 'stampede-source'`, [source.database])).rowCount === 0,
      { timeoutMs: 10_000, what: 'the source session to end' });
    } finally {
      await sourceDb.end();
    }
  }, 180_000);

  it('stops PostgreSQL even when the shutdown is forced (its budget spent)', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'stampede-e2e-forced-'));
    dirs.push(dataDir);
    const port = await freePort();
    // A budget of 0: the forced exit comes before the graceful close can stop anything.
    const server = spawnStampede(['serve'], { STAMPEDE_DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1', STAMPEDE_SHUTDOWN_TIMEOUT_MS: '0' });
    started.push(server);
    await server.waitForOutput(/Server listening/, 90_000);
    const postmasterPid = Number(readFileSync(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(1);
    await waitFor(async () => !isAlive(postmasterPid), { timeoutMs: 10_000, what: 'the embedded PostgreSQL to stop' });
  }, 120_000);

  it('drains a SIGTERM that arrives while it starts (PostgreSQL up, migrations running), and stops PostgreSQL', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'stampede-e2e-starting-'));
    dirs.push(dataDir);
    const port = await freePort();
    const server = spawnStampede(['serve'], { STAMPEDE_DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1' });
    started.push(server);
    await server.waitForOutput(/embedded PostgreSQL ready/, 90_000);
    const postmasterPid = Number(readFileSync(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
    server.child.kill('SIGTERM');
    // Killed by the signal itself (no handler yet), the process would leave PostgreSQL running.
    expect(await server.exited).toBe(0);
    await waitFor(async () => !isAlive(postmasterPid), { timeoutMs: 10_000, what: 'the embedded PostgreSQL to stop' });
  }, 120_000);
});
