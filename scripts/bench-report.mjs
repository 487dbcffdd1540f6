// Bundles bench/report-main.ts and runs it: `npm run bench-report -- RUN.json` (docs/performance.md).
import { bundleAndRun } from './bundle-run.mjs';

await bundleAndRun('bench/report-main.ts', 'dist/bench-report.mjs', process.argv.slice(2));
