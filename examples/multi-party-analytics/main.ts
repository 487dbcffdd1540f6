/**
 * `npm run demo [-- --dir DIR] [--rows N]`: runs the multi-party analytics demo and prints its narrative.
 * scripts/demo.mjs builds the workload bundles and this entry, then runs it with their paths.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runDemo } from './demo.js';

const { values } = parseArgs({
  options: {
    dir: { type: 'string' },
    rows: { type: 'string' },
    cli: { type: 'string' },
    workload: { type: 'string' },
    'modified-workload': { type: 'string' },
  },
});
const rows = values.rows === undefined ? undefined : Number(values.rows);
if (rows !== undefined && (!Number.isInteger(rows) || rows < 100 || rows > 1_000_000)) {
  process.stderr.write('--rows must be an integer from 100 to 1000000\n');
  process.exit(2);
}
if (values.cli === undefined || values.workload === undefined || values['modified-workload'] === undefined) {
  process.stderr.write(
    'run through `npm run demo` (scripts/demo.mjs passes --cli, --workload, --modified-workload)\n',
  );
  process.exit(2);
}
const report = await runDemo({
  dir: resolve(values.dir ?? mkdtempSync(join(tmpdir(), 'ekms-demo-'))),
  cli: values.cli,
  workload: values.workload,
  modifiedWorkload: values['modified-workload'],
  ...(rows === undefined ? {} : { rows }),
});
// Exit 1 when the story did not go as it must: a refused genuine workload, an accepted modified one, a cross-party
// read, a plaintext found on the untrusted side, or an audit log that does not verify.
const ok =
  report.workload.ok &&
  !report.modifiedWorkload.ok &&
  report.crossPartyRefusals.every((r) => r.code === 'ACCESS_DENIED') &&
  report.leakScan.hits.length === 0 &&
  report.audit['ok'] === true;
process.exit(ok ? 0 : 1);
