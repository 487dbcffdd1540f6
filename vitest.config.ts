import { defineConfig } from 'vitest/config';

// EKMS_PROPERTY_RUNS=N raises every property suite to N cases (test/helpers/property-runs.ts): such a run has no
// per-test timeout.
const longPropertyRun = (process.env['EKMS_PROPERTY_RUNS'] ?? '') !== '';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: longPropertyRun ? 0 : 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    globalSetup: ['test/global-setup.ts'],
    setupFiles: ['test/global-properties.ts'],
  },
});
