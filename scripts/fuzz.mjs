// The nightly-style hostile-input run (issue 9, docs/reliability.md): every property suite of a decoder an outsider
// can reach, at EKMS_PROPERTY_RUNS cases per property (default 100 000; `npm run fuzz -- --runs N`, and any other
// arguments go to vitest, e.g. a file filter: `npm run fuzz -- --runs 20000 test/shared`).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const SUITES = [
  'test/shared/frame.test.ts',
  'test/shared/review-protocol.test.ts',
  'test/shared/session-properties.test.ts',
  'test/shared/audit.test.ts',
  'test/attestation/nitro-property.test.ts',
  'test/attestation/x509-property.test.ts',
  'test/attestation/sev-snp-parse.test.ts',
  'test/attestation/policy.test.ts',
  'test/crypto/properties.test.ts',
  'test/crypto/xwing.test.ts',
  'test/enclave/key-policy.test.ts',
  'test/enclave/sealing.test.ts',
  'test/enclave/shamir.test.ts',
  'test/host/blob-store.test.ts',
];

const args = process.argv.slice(2);
let runs = '100000';
const i = args.indexOf('--runs');
if (i >= 0) {
  runs = args[i + 1] ?? '';
  args.splice(i, 2);
}
if (!/^[1-9]\d*$/.test(runs)) {
  console.error(`fuzz: --runs must be a positive integer, not ${JSON.stringify(runs)}`);
  process.exit(2);
}
// Suites are the arguments that name existing files; everything else goes to vitest as given (`-t NAME` included).
const named = args.filter((a) => !a.startsWith('-') && existsSync(a));
const flags = args.filter((a) => !named.includes(a));
const files = named.length > 0 ? named : SUITES;
const started = Date.now();
console.log(`fuzz: ${runs} cases per property over ${files.length} suite(s)`);
// One vitest run per suite, in turn: a failure's counterexample and seed (fast-check prints both; rerun it with
// fc.configureGlobal({seed, path}) or the seed in the test) are printed when that suite ends, not hours later.
const summary = [];
for (const file of files) {
  const t = Date.now();
  const r = spawnSync('npx', ['vitest', 'run', file, ...flags], {
    stdio: 'inherit',
    env: { ...process.env, EKMS_PROPERTY_RUNS: runs },
  });
  summary.push({ file, ok: r.status === 0, seconds: Math.round((Date.now() - t) / 1000) });
}
console.log('\nfuzz summary');
for (const s of summary)
  console.log(`  ${s.ok ? 'passed' : 'FAILED'}  ${String(s.seconds).padStart(6)} s  ${s.file}`);
const failed = summary.filter((s) => !s.ok).length;
console.log(
  `fuzz: ${failed === 0 ? 'passed' : `${failed} suite(s) FAILED`} in ${((Date.now() - started) / 1000).toFixed(0)} s`,
);
process.exit(failed === 0 ? 0 : 1);
