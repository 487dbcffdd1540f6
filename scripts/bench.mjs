// Bundles bench/index.ts and runs it: `npm run bench [-- --json] [suite…]` (docs/performance.md).
import { bundleAndRun } from './bundle-run.mjs';

await bundleAndRun('bench/index.ts', 'dist/bench.mjs', process.argv.slice(2));
