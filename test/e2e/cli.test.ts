// The command line as a user meets it: help and version on stdout before anything is configured
// or started, refusals on stderr with exit 2.
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnStampede } from '../harness/spawn-stampede.ts';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

describe('stampede CLI', () => {
  let cwd: string;
  beforeAll(async () => { cwd = await mkdtemp(path.join(os.tmpdir(), 'stampede-cli-')); });
  afterAll(async () => { await rm(cwd, { recursive: true, force: true }); });

  // A configuration that would refuse to boot: help must not read it.
  const broken = { PORT: 'eighty', STAMPEDE_POINTS_EXPIRY_SCHEDULE: 'bogus' };
  const run = async (args: string[], env: Record<string, string> = broken) => {
    const child = spawnStampede(args, env, { cwd });
    const code = await child.exited;
    return { code, stdout: child.stdout(), stderr: child.stderr() };
  };

  it.each([
    [['--help'], /usage: stampede <command>[\s\S]*partner create <name>[\s\S]*jobs watch <jobId>/],
    [['help'], /usage: stampede <command>/],
    [['serve', '--help'], /usage: stampede serve\n/],
    [['reconcile', '-h'], /usage: stampede reconcile <templateId>/],
    [['partner', 'create', '--help'], /usage: stampede partner create <name>/],
    [['jobs', 'watch', 'x', '--help'], /usage: stampede jobs watch <jobId>/],
    [['partner', '--help'], /partner create <name>/],
  ])('%j prints help on stdout, exits 0, reads no configuration and starts nothing', async (args, pattern) => {
    const { code, stdout, stderr } = await run(args);
    expect(stderr).toBe('');
    expect(stdout).toMatch(pattern);
    expect(code).toBe(0);
    expect(existsSync(path.join(cwd, '.stampede'))).toBe(false); // no embedded PostgreSQL booted
  });

  it('--version prints the package version', async () => {
    const { code, stdout } = await run(['--version']);
    expect(code).toBe(0);
    expect(stdout).toBe(`${pkg.version}\n`);
  });

  it.each([
    [[], /a command is required/],
    [['bogus'], /unknown command: bogus/],
    [['serve', '--port=1'], /Unknown option '--port'/],
    [['serve', 'extra'], /unexpected argument: extra/],
    [['reconcile'], /missing <templateId>/],
    [['partner'], /a subcommand is required/],
    [['partner', 'delete', 'x'], /unknown subcommand: delete/],
    [['jobs', 'watch'], /missing <jobId>/],
    [['--version', 'x'], /unexpected argument: x/],
  ])('%j prints usage on stderr and exits 2', async (args, pattern) => {
    const { code, stdout, stderr } = await run(args);
    expect(stdout).toBe('');
    expect(stderr).toMatch(pattern);
    expect(stderr).toMatch(/usage: stampede/);
    expect(code).toBe(2);
  });

  it('lists every bad setting at boot, the cron schedules included, and exits 2 without a stack', async () => {
    const { code, stderr } = await run(['migrate'], { ...broken, STAMPEDE_RECONCILE_SCHEDULE: '61 * * * *' });
    expect(code).toBe(2);
    expect(stderr).toMatch(/invalid configuration/);
    expect(stderr).toMatch(/PORT="eighty"/);
    expect(stderr).toMatch(/STAMPEDE_POINTS_EXPIRY_SCHEDULE="bogus": not a cron schedule/);
    expect(stderr).toMatch(/STAMPEDE_RECONCILE_SCHEDULE="61 \* \* \* \*"/);
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it('client commands say what is missing instead of failing obscurely', async () => {
    const watch = await run(['jobs', 'watch', '00000000-0000-0000-0000-000000000000'], {});
    expect(watch.code).toBe(1);
    expect(watch.stderr).toMatch(/needs a partner API key: set STAMPEDE_API_KEY/);
    const create = await run(['partner', 'create', 'Acme', '--url', 'http://127.0.0.1:9'], { STAMPEDE_ADMIN_TOKEN: 'x'.repeat(32) });
    expect(create.code).toBe(1);
    expect(create.stderr).toMatch(/cannot reach http:\/\/127\.0\.0\.1:9 .*is `stampede serve` running/);
  });
});
