// The pure unit tier alone, for Stryker: no global set-up (no PostgreSQL, no Redis), so each mutant
// runs in milliseconds. Kept apart from vitest.config.ts so mutation testing does not depend on it.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.unit.test.ts', 'test/**/*.unit.test.ts'],
    pool: 'forks',
  },
});
