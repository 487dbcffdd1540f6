// Bundles a TypeScript entry (esbuild, node_modules external) into dist/ and runs it with --expose-gc, passing the
// remaining arguments; exits with its exit code. Used by `npm run bench` and `npm run load`.

import { spawnSync } from 'node:child_process';
import { build } from 'esbuild';

export async function bundleAndRun(entry, outfile, args) {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    packages: 'external',
    logLevel: 'warning',
  });
  const r = spawnSync(process.execPath, ['--expose-gc', outfile, ...args], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
