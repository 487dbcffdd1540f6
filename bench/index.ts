/**
 * `npm run bench`: runs every benchmark in one process and prints each figure beside its baseline measured in
 * the same run. `--json` prints `{ machine, results: [{ id, unit, value, baseline, ratio }], targets, suites }`
 * (`suites`: each suite that ran → its row ids; `npm run bench-report -- RUN.json` renders such a document as Markdown).
 * Ratios are what to read; absolute figures depend on the machine (docs/performance.md). After the table (or as
 * `targets` in the JSON) each of issue 8's targets is judged on this run's ratios (bench/targets.ts): met, missed,
 * incomplete or not run, with the row nearest to missing. A miss does not change the exit code.
 */
import { execFileSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { allocatorSetting, rerunWithBenchAllocator } from './allocator.js';
import { benchNitro } from './attestation-nitro.js';
import { benchSnp } from './attestation-snp.js';
import { collectorSetting, withBenchCollector } from './collector.js';
import { benchEnvelope } from './envelope.js';
import { benchEnvelopeMemory } from './envelope-memory.js';
import { benchKmsService } from './kms-service.js';
import { benchPrimitives } from './primitives.js';
import { formatVerdicts, judgeTargets } from './targets.js';
import { benchXWing } from './xwing.js';

interface Row {
  readonly id: string;
  readonly unit: string;
  readonly value: number;
  readonly baseline: number;
  readonly ratio: number;
}

const suites: Record<string, () => Promise<readonly Row[]>> = {
  'attestation-nitro': () => benchNitro(),
  'attestation-snp': () => benchSnp(),
  // With the bench's collector setting (bench/collector.ts); the machine line says which.
  envelope: () => withBenchCollector(() => benchEnvelope()),
  xwing: () => benchXWing(),
  primitives: () => benchPrimitives(),
  'envelope-1gib': () => benchEnvelopeMemory(),
  // Last: startHost switches this process to the service processes' V8 settings (shared/runtime-tuning.ts), which
  // the suites above measure without (they time client-side code, which runs in the user's process).
  service: () => benchKmsService(),
};

/**
 * The commit the run measured (`git rev-parse HEAD`, with `+dirty` when the work tree has changes), so that a saved
 * run names its code; undefined outside a git checkout (an installed package).
 */
function gitCommit(): string | undefined {
  const git = (...args: string[]): string =>
    execFileSync('git', args, {
      // The checkout this bundle belongs to, wherever the bench was started from.
      cwd: dirname(fileURLToPath(import.meta.url)),
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 5_000,
    }).trim();
  try {
    const head = git('rev-parse', 'HEAD');
    return git('status', '--porcelain', '--untracked-files=no') === '' ? head : `${head}+dirty`;
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const only = args.filter((a) => !a.startsWith('--'));
  const unknown = only.filter((a) => !Object.hasOwn(suites, a));
  if (unknown.length > 0) {
    const message = `unknown benchmark suite(s): ${unknown.join(', ')} (one of ${Object.keys(suites).join(', ')})`;
    if (json) process.stdout.write(`${JSON.stringify({ ok: false, code: 'USAGE_ERROR', message })}\n`);
    else process.stderr.write(`${message}\n`);
    process.exit(2);
  }
  const rerun = rerunWithBenchAllocator();
  if (rerun !== undefined) {
    process.exitCode = rerun;
    return;
  }
  const allocator = allocatorSetting();
  const started = new Date().toISOString();
  const commit = gitCommit();
  const results: Row[] = [];
  const ran: Record<string, string[]> = {};
  for (const [name, run] of Object.entries(suites)) {
    if (only.length > 0 && !only.includes(name)) continue;
    if (!json) process.stderr.write(`running ${name}…\n`);
    const rows = await run();
    ran[name] = rows.map((r) => r.id);
    results.push(...rows);
  }
  const machine = {
    node: process.version,
    cpus: cpus().length,
    cpu: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    allocator,
    ...(collectorSetting() === undefined ? {} : { envelopeCollector: collectorSetting() }),
    ...(commit === undefined ? {} : { commit }),
    started,
    date: new Date().toISOString(),
  };
  const targets = judgeTargets(results);
  if (json) {
    // The CLI contract's one JSON document ({"ok":true,…}) with the shape { machine, results }, the
    // targets judged on it, and which suite printed which rows (`suites`, for `npm run bench-report`).
    process.stdout.write(
      `${JSON.stringify({ ok: true, machine, results, targets, suites: ran }, null, 2)}\n`,
    );
    return;
  }
  const fmt = (n: number): string => (n >= 100 ? Math.round(n).toString() : n.toFixed(2));
  const w = Math.max(...results.map((r) => r.id.length));
  process.stdout.write(
    `${'id'.padEnd(w)}  ${'value'.padStart(10)}  ${'baseline'.padStart(10)}   ratio  unit\n`,
  );
  for (const r of results) {
    process.stdout.write(
      `${r.id.padEnd(w)}  ${fmt(r.value).padStart(10)}  ${fmt(r.baseline).padStart(10)}  ${r.ratio.toFixed(3).padStart(6)}  ${r.unit}\n`,
    );
  }
  process.stdout.write(`\n${formatVerdicts(targets)}`);
  process.stdout.write(`\n${JSON.stringify(machine)}\n`);
}

await main();
