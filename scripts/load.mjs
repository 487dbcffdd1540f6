// Bundles bench/load.ts and runs it: `npm run load [-- --clients 200 --seconds 60]` (docs/reliability.md).
import { bundleAndRun } from './bundle-run.mjs';

await bundleAndRun('bench/load.ts', 'dist/load.mjs', process.argv.slice(2));
