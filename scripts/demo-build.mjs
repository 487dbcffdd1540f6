// Builds the multi-party analytics demo (examples/multi-party-analytics): the analytics workload twice — the
// genuine build and a modified one (a different __WORKLOAD_VARIANT__, hence different bytes and measurement) —
// and the demo's entry. Used by `npm run demo` and by test/e2e/demo.test.ts.
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  packages: 'external',
  logLevel: 'warning',
};

export async function buildDemo() {
  const out = join(REPO, 'dist', 'demo');
  mkdirSync(out, { recursive: true });
  const paths = {
    main: join(out, 'demo.mjs'),
    workload: join(out, 'analytics-workload.mjs'),
    modifiedWorkload: join(out, 'analytics-workload-modified.mjs'),
    cli: join(REPO, 'bin', 'ekms.mjs'),
  };
  const entry = join(REPO, 'examples', 'multi-party-analytics');
  await Promise.all([
    build({ ...common, entryPoints: [join(entry, 'main.ts')], outfile: paths.main }),
    build({
      ...common,
      entryPoints: [join(entry, 'workload.ts')],
      outfile: paths.workload,
      define: { __WORKLOAD_VARIANT__: '"genuine"' },
    }),
    build({
      ...common,
      entryPoints: [join(entry, 'workload.ts')],
      outfile: paths.modifiedWorkload,
      define: { __WORKLOAD_VARIANT__: '"modified"' },
    }),
  ]);
  return paths;
}
