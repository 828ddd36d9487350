import { defineConfig } from 'vitest/config';

// Two projects: `unit` needs no processes; `integration` drives real Envoy and Consul.
// Every integration test takes its ports from the OS (port 0 or a probed free port),
// so files may run side by side; two workers match the 2-core CI machine.
export default defineConfig({
  test: {
    reporters: ['default', './test/summary-reporter.ts'],
    maxWorkers: 2,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 10_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
