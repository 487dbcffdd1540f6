#!/usr/bin/env node
// The `ekms` command: runs the bundle built on install (npm ci runs `prepare` → scripts/build.mjs).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const bundle = fileURLToPath(new URL('../dist/cli.mjs', import.meta.url));
if (!existsSync(bundle)) {
  process.stderr.write('ekms: the CLI is not built: run `npm run build` (npm ci does it for you)\n');
  process.exit(1);
}
await import(bundle);
