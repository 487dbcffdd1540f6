// Builds the three bundles with esbuild (runs on `npm ci` via `prepare`, and before `npm test`):
//   dist/enclave.mjs  the enclave image: self-contained (all dependencies inlined), its SHA-384 is the simulated
//                     measurement, so any change to enclave code or its dependencies changes what clients see.
//   dist/cli.mjs      the ekms CLI (client + `ekms start`, which runs the host); node_modules stay external.
//   dist/bench.mjs    the benchmarks (`npm run bench`, `ekms bench`).

import { mkdirSync } from 'node:fs';
import { build } from 'esbuild';

mkdirSync('dist', { recursive: true });
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning',
  // ESM bundles of CommonJS dependencies need `require`.
  banner: {
    js: "import { createRequire as __ekmsCreateRequire } from 'node:module'; const require = __ekmsCreateRequire(import.meta.url);",
  },
};
const noNativeCbor = {
  name: 'no-native-cbor',
  setup(b) {
    b.onResolve({ filter: /^cbor-extract$/ }, () => ({ path: 'cbor-extract', namespace: 'stub' }));
    b.onLoad({ filter: /.*/, namespace: 'stub' }, () => ({
      contents: "throw new Error('native CBOR acceleration is not part of the enclave image');",
      loader: 'js',
    }));
  },
};

await Promise.all([
  build({
    ...common,
    entryPoints: ['enclave/main.ts'],
    outfile: 'dist/enclave.mjs',
    // cbor-extract is an optional native accelerator loaded from node_modules at run time: the enclave image must
    // be self-contained and measured, so it gets a stub that fails to load and cbor-x uses its pure-JS decoder.
    plugins: [noNativeCbor],
  }),
  build({ ...common, entryPoints: ['client/cli/entry.ts'], outfile: 'dist/cli.mjs', packages: 'external' }),
  // `ekms bench` runs this bundle (benchmarks import the dev peer @aws-crypto/client-node, kept external).
  build({ ...common, entryPoints: ['bench/index.ts'], outfile: 'dist/bench.mjs', packages: 'external' }),
]);
