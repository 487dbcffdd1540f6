/**
 * SEV-SNP verification throughput (design §7), each figure next to a baseline measured in the same run:
 * one bare ECDSA P-384 / SHA-384 verify through node:crypto over the same 0x2A0 signed bytes. Every row starts from
 * the report's bytes (so the cached rows compare like for like with Nitro's `parse+verify (cached)`):
 *
 * - snp.parse: the report's layout checks alone;
 * - snp.verify.uncached: parse + full chain (three certificate parses, three RSA-PSS verifies) + report
 *   signature, no cache;
 * - snp.verify.cached: the same with an `SnpVerifierCache` (certificates parsed and links verified once);
 *   target: at most 1.5× the cost of one bare P-384 verify;
 * - snp.verify.cached.v2-all-anchors: cached, a version 2 report (no CPUID, so every anchor is a
 *   candidate) against the embedded AMD anchors plus the simulated one, as a default configuration would.
 *
 * Ratio = baseline / value: the cost of one operation in bare P-384 verifies (lower is better); the cases are timed
 * in alternating rounds (bench/verify-cost.ts).
 * Uses a simulated Milan CA made once (RSA-4096 key generation takes a few seconds, not measured).
 * Run: `npm run bench -- attestation-snp`.
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
import { type CostRow, verifyCostRows } from './verify-cost.js';

/** One measured figure: `value` in `unit`, and the same-run `baseline` (bare P-384 verifies/s). */
export type BenchResult = CostRow;

/** Options of `benchSnp`. */
export interface BenchSnpOptions {
  /** Measuring time per figure and round, in seconds (default 0.6). */
  readonly seconds?: number;
  /** Rounds, odd; the median is reported (default 3). */
  readonly rounds?: number;
}

/** Measures SNP verifications per second, uncached and cached, against bare P-384 verifies. */
export async function benchSnp(options: BenchSnpOptions = {}): Promise<BenchResult[]> {
  const now = new Date();
  const ca = await createSimulatedSnpCa({ now, product: 'Milan' });
  const report = simulateSnpReport(ca, { measurement: 'ab'.repeat(48) });
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
  const v2Report = simulateSnpReport(ca, { version: 2 });
  const allAnchors = [...AMD_SNP_TRUST_ANCHORS, ...trustAnchors];
  const BASELINE = 'snp.ecdsa-p384.verify (baseline)';
  const cases: Record<string, () => void> = {
    [BASELINE]: bare,
    'snp.parse': () => {
      parseSnpReport(report);
    },
    'snp.verify.uncached': () => {
      verifySnpReport(parseSnpReport(report), { trustAnchors, now, vek: ca.vcek, intermediates: [] });
    },
    'snp.verify.cached': () => {
      verifySnpReport(parseSnpReport(report), { trustAnchors, now, vek: ca.vcek, cache });
    },
    'snp.verify.cached.v2-all-anchors': () => {
      verifySnpReport(parseSnpReport(v2Report), { trustAnchors: allAnchors, now, vek: ca.vcek, cache });
    },
  };
  return verifyCostRows(cases, BASELINE, {
    seconds: options.seconds ?? 0.6,
    rounds: options.rounds ?? 3,
  });
}
