// Three tiers, each runnable alone (`npm run test:unit|test:integration|test:e2e`; `npm test` runs
// all three). Only `integration` and `e2e` start PostgreSQL and Redis, and each of their test files
// gets its own database and Redis database (test/harness/file-services.ts), so any number of forks
// may run them side by side. Test files join a tier by name and place alone (see test/README.md).
import { configDefaults, defineConfig } from 'vitest/config';

const UNIT = ['src/**/*.unit.test.ts', 'test/**/*.unit.test.ts'];
const E2E = ['test/e2e/**/*.test.ts'];
const withServices = {
  globalSetup: ['test/harness/global-setup.ts'],
  setupFiles: ['test/harness/file-services.ts'],
};

export default defineConfig({
  test: {
    pool: 'forks',
    reporters: ['default', './test/harness/skip-notes-reporter.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    projects: [
      { extends: true, test: { name: 'unit', include: UNIT } },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...UNIT, ...E2E],
          ...withServices,
        },
      },
      {
        extends: true,
        // Real processes start, migrate and stop in each test: on a loaded 2-core machine running
        // 4 forks one took 58 s of the 60 s default alone. A deadline, not a performance bound.
        test: { name: 'e2e', include: E2E, exclude: [...configDefaults.exclude, ...UNIT], testTimeout: 180_000, ...withServices },
      },
    ],
  },
});
