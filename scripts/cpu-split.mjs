// Bundles bench/cpu-split.ts and runs it: `npm run cpu-split [-- --clients 64 --seconds 3 --rounds 3]` (docs/performance.md).
import { bundleAndRun } from './bundle-run.mjs';

await bundleAndRun('bench/cpu-split.ts', 'dist/cpu-split.mjs', process.argv.slice(2));
