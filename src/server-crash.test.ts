// The process survives its own bugs deliberately: a real `stampede serve` in which a bug escapes
// every handler (planted on SIGUSR2 by a preloaded module, test/fixtures/crash-on-sigusr2.mjs)
// logs it as fatal, drains (closes HTTP, workers and pools) and exits 1 for its supervisor to
// restart it, never silently and never with Node's bare stack trace.
import { fileURLToPath } from 'node:url';
import { describe, expect, inject, it } from 'vitest';
import { spawnStampede } from '../test/harness/spawn-stampede.ts';

const PRELOAD = fileURLToPath(new URL('../test/fixtures/crash-on-sigusr2.mjs', import.meta.url));

describe.each([
  { kind: 'rejection', origin: 'unhandledRejection', message: 'deliberate unhandled rejection' },
  { kind: 'exception', origin: 'uncaughtException', message: 'deliberate uncaught exception' },
])('a bug that escapes: $origin', ({ kind, origin, message }) => {
  it('is logged as fatal, and the process drains and exits 1', async () => {
    const serve = spawnStampede(['serve'], {
      DATABASE_URL: inject('databaseUrl'), PORT: '0', HOST: '127.0.0.1', STAMPEDE_WORKERS: 'off',
      STAMPEDE_ADMIN_TOKEN: 'crash-test-admin-token', NODE_OPTIONS: `--import=${PRELOAD}`, STAMPEDE_TEST_CRASH: kind,
    });
    try {
      await serve.waitForOutput(/Server listening/, 90_000);
      serve.child.kill('SIGUSR2');
      expect(await serve.exited).toBe(1);
      const lines = serve.output().split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>);
      const fatal = lines.find((line) => line.origin === origin);
      expect(fatal).toMatchObject({ level: 60, err: { message } });
      const drained = lines.find((line) => line.msg === 'drained after a crash; exiting');
      expect(drained, serve.output()).toMatchObject({ level: 60, exitCode: 1 });
      expect(String(drained!.time) >= String(fatal!.time), serve.output()).toBe(true);
    } finally {
      if (serve.child.exitCode === null) serve.child.kill('SIGKILL');
    }
  }, 120_000);
});
