/**
 * SEV-SNP verification throughput (design §7), each figure next to a baseline measured in the same run:
 * one bare ECDSA P-384 / SHA-384 verify through node:crypto over the same 0x2A0 signed bytes.
 *
 * - snp.verify.uncached: parse + full chain (three certificate parses, three RSA-PSS verifies) + report
 *   signature, no cache;
 * - snp.verify.cached: the same with an `SnpVerifierCache` (certificates parsed and links verified once);
 *   target: at most 1.5× the cost of one bare P-384 verify;
 * - snp.verify.cached.v2-all-anchors: cached, a version 2 report (no CPUID, so every anchor is a
 *   candidate) against the embedded AMD anchors plus the simulated one, as a default configuration would.
 *
 * Uses a simulated Milan CA made once (RSA-4096 key generation takes a few seconds, not measured).
 * Run: `npx esbuild bench/attestation-snp.ts --bundle --platform=node --format=esm --outfile=/tmp/b.mjs`
 * then `node -e "import('/tmp/b.mjs').then(async (m) => console.table(await m.benchSnp()))"`.
 */
import { createPublicKey, verify } from 'node:crypto';
import {
  AMD_SNP_TRUST_ANCHORS,
  parseSnpReport,
  SNP_SIGNED_LENGTH,
  SnpVerifierCache,
  verifySnpReport,
} from '../attestation/sev-snp/index.js';
import {
  createSimulatedSnpCa,
  simulatedSnpTrustAnchor,
  simulateSnpReport,
} from '../attestation/simulated/sev-snp.js';

/** One measured figure: `value` in `unit`, and the same-run `baseline` (bare P-384 verifies/s). */
export interface BenchResult {
  readonly id: string;
  readonly unit: string;
  readonly value: number;
  readonly baseline: number;
  /** baseline / value: how many bare P-384 verifies one operation costs. */
  readonly ratio: number;
}

/** Operations per second of `fn`, after a warm-up, over at least `minMs`. */
function opsPerSecond(fn: () => void, minMs = 1500): number {
  for (let i = 0; i < 50; i++) fn();
  let n = 0;
  const start = performance.now();
  let elapsed = 0;
  do {
    for (let i = 0; i < 50; i++) fn();
    n += 50;
    elapsed = performance.now() - start;
  } while (elapsed < minMs);
  return (n * 1000) / elapsed;
}

/** Measures SNP verifications per second, uncached and cached, against bare P-384 verifies. */
export async function benchSnp(): Promise<BenchResult[]> {
  const now = new Date();
  const ca = await createSimulatedSnpCa({ now, product: 'Milan' });
  const report = simulateSnpReport(ca, { measurement: 'ab'.repeat(48) });
  const evidence = parseSnpReport(report);
  const trustAnchors = [simulatedSnpTrustAnchor(ca)];

  const vekKey = createPublicKey(ca.vcek);
  const r = Buffer.from(report.subarray(0x2a0, 0x2a0 + 48)).reverse();
  const s = Buffer.from(report.subarray(0x2e8, 0x2e8 + 48)).reverse();
  const signature = Buffer.concat([r, s]);
  const signed = report.subarray(0, SNP_SIGNED_LENGTH);
  const bare = (): void => {
    if (!verify('sha384', signed, { key: vekKey, dsaEncoding: 'ieee-p1363' }, signature))
      throw new Error('bare verify');
  };

  const cache = new SnpVerifierCache();
  const uncached = (): void => {
    verifySnpReport(parseSnpReport(report), { trustAnchors, now, vek: ca.vcek, intermediates: [] });
  };
  const cached = (): void => {
    verifySnpReport(evidence, { trustAnchors, now, vek: ca.vcek, cache });
  };
  const v2Evidence = parseSnpReport(simulateSnpReport(ca, { version: 2 }));
  const allAnchors = [...AMD_SNP_TRUST_ANCHORS, ...trustAnchors];
  const cachedAllAnchors = (): void => {
    verifySnpReport(v2Evidence, { trustAnchors: allAnchors, now, vek: ca.vcek, cache });
  };

  const baseline1 = opsPerSecond(bare);
  const uncachedOps = opsPerSecond(uncached);
  const cachedOps = opsPerSecond(cached);
  const cachedAllOps = opsPerSecond(cachedAllAnchors);
  const baseline2 = opsPerSecond(bare);
  const baseline = (baseline1 + baseline2) / 2;
  const result = (id: string, value: number): BenchResult => ({
    id,
    unit: 'verifications/s',
    value: Math.round(value),
    baseline: Math.round(baseline),
    ratio: Math.round((baseline / value) * 100) / 100,
  });
  return [
    result('snp.verify.uncached', uncachedOps),
    result('snp.verify.cached', cachedOps),
    result('snp.verify.cached.v2-all-anchors', cachedAllOps),
  ];
}
