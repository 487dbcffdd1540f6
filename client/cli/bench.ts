/**
 * `ekms bench [--json] [suite…]` (design §5; issue 8): runs the benchmark harness (dist/bench.mjs, bench/index.ts)
 * in a child process with `--expose-gc`. Without --json it prints the table (each figure beside a baseline measured
 * in the same run) and the verdict on each of issue 8's targets; with --json one document
 * `{"ok":true,"machine":{…},"results":[{id,unit,value,baseline,ratio}],"targets":[…],"suites":{…}}` (bench/targets.ts;
 * `npm run bench-report -- RUN.json` renders a saved one as Markdown).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { ConfigError } from '../../shared/errors.js';

function benchBundle(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const candidate of [join(here, 'bench.mjs'), join(here, '..', '..', 'dist', 'bench.mjs')]) {
    if (existsSync(candidate)) return candidate;
  }
  throw new ConfigError(
    'CONFIG_INVALID',
    'the benchmark bundle dist/bench.mjs is missing: run `npm run build`',
  );
}

export function registerBench(program: Command): void {
  program
    .command('bench [suites...]')
    .description(
      'benchmarks: attestation-nitro, attestation-snp, envelope, xwing, primitives, envelope-1gib, service (default: all)',
    )
    .option('--json', 'one JSON document: {"ok":true,"machine":…,"results":[…],"targets":[…],"suites":{…}}')
    .action(async (suites: string[], o: { json?: boolean }) => {
      const args = ['--expose-gc', benchBundle(), ...(o.json ? ['--json'] : []), ...suites];
      const code = await new Promise<number>((resolve) => {
        const child = spawn(process.execPath, args, { stdio: 'inherit' });
        child.on('exit', (c) => resolve(c ?? 1));
        child.on('error', () => resolve(1));
      });
      process.exitCode = code;
    });
}
