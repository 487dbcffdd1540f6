// Bundles bench/index.ts and runs it: `npm run bench [-- suite…]`, `npm run -s bench -- --json` (-s: without it npm's
// banner precedes the JSON on stdout) (docs/performance.md).
import { bundleAndRun } from './bundle-run.mjs';

await bundleAndRun('bench/index.ts', 'dist/bench.mjs', process.argv.slice(2));
