/** Types of scripts/demo-build.mjs (for test/e2e/demo.test.ts). */
export function buildDemo(): Promise<{
  main: string;
  workload: string;
  modifiedWorkload: string;
  cli: string;
}>;
