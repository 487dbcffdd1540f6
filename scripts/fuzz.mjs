// The nightly-style hostile-input run (issue 9, docs/reliability.md): every property suite of a decoder an outsider
// can reach, at EKMS_PROPERTY_RUNS cases per property (default 100 000; `npm run fuzz -- --runs N`, and any other
// arguments go to vitest, e.g. a file filter: `npm run fuzz -- --runs 20000 test/shared`).
import { spawnSync } from 'node:child_process';

const SUITES = [
  'test/shared/frame.test.ts',
  'test/shared/review-protocol.test.ts',
  'test/shared/session-properties.test.ts',
  'test/shared/audit.test.ts',
  'test/attestation/nitro-property.test.ts',
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
const files = args.some((a) => !a.startsWith('-')) ? args : [...SUITES, ...args];
const started = Date.now();
console.log(
  `fuzz: ${runs} cases per property over ${files.filter((f) => !f.startsWith('-')).length} suite(s)`,
);
const r = spawnSync('npx', ['vitest', 'run', ...files], {
  stdio: 'inherit',
  env: { ...process.env, EKMS_PROPERTY_RUNS: runs },
});
console.log(
  `fuzz: ${r.status === 0 ? 'passed' : 'FAILED'} in ${((Date.now() - started) / 1000).toFixed(0)} s`,
);
process.exit(r.status ?? 1);
