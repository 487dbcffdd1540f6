// Builds the three bundles with esbuild (runs on `npm ci` via `prepare`, and before `npm test`):
//   dist/enclave.mjs  the enclave image: self-contained (all dependencies inlined), its SHA-384 is the simulated
//                     measurement, so any change to enclave code or its dependencies changes what clients see.
//   dist/cli.mjs      the ekms CLI (client + `ekms start`, which runs the host); node_modules stay external.

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
await Promise.all([
  build({
    ...common,
    entryPoints: ['enclave/main.ts'],
    outfile: 'dist/enclave.mjs',
    // cbor-extract is an optional native accelerator; the enclave uses cbor-x's pure-JS decoder.
    external: ['cbor-extract'],
  }),
  build({ ...common, entryPoints: ['client/cli/entry.ts'], outfile: 'dist/cli.mjs', packages: 'external' }),
]);
