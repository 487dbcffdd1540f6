// Bundles bench/load.ts (esbuild) and runs it: `npm run load [-- --clients 200 --seconds 60]` (docs/reliability.md).

import { spawnSync } from 'node:child_process';
import { build } from 'esbuild';

await build({
  entryPoints: ['bench/load.ts'],
  outfile: 'dist/load.mjs',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  packages: 'external',
  logLevel: 'warning',
});
const r = spawnSync(process.execPath, ['--expose-gc', 'dist/load.mjs', ...process.argv.slice(2)], {
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
