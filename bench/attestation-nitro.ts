/**
 * Benchmark: AWS Nitro document verification, uncached and with an X509Cache, next to the baseline it
 * cannot beat — one bare ECDSA P-384 verify through node:crypto over the same Sig_structure bytes —
 * measured in the same run (style: figures beside a baseline; design §7: ~2.2k P-384 verifies/s).
 *
 * A verification checks four certificate links and the document signature (five P-384 verifies) plus
 * parsing; the cache skips the four link signatures, so the target is cached ≤ 1.5× one bare verify.
 * The document is simulated (same layout, key sizes and chain depth as AWS's), so no file is read.
 *
 * Usage: `benchNitro({ seconds })` → rows `{ id, unit, value, baseline, ratio }`, where `ratio` is the
 * cost of one operation relative to one bare verify (lower is better; cases timed in alternating rounds,
 * bench/verify-cost.ts). Run: `npm run bench -- attestation-nitro`.
 */
import { verify } from 'node:crypto';
import {
  AWS_NITRO_TRUST_ANCHORS,
  parseNitroDocument,
  sigStructure1,
  verifyNitroDocument,
} from '../attestation/nitro/index.js';
import {
  createSimulatedNitroCa,
  simulatedNitroTrustAnchor,
  simulateNitroDocument,
} from '../attestation/simulated/nitro.js';
import { parseCertificate, X509Cache } from '../attestation/x509/index.js';
import { type CostRow, verifyCostRows } from './verify-cost.js';

/** One benchmark figure: `ratio` is the cost of one operation in bare P-384 verifies (bench/verify-cost.ts). */
export type BenchRow = CostRow;

/** Options of `benchNitro`. */
export interface BenchNitroOptions {
  /** Measuring time per figure and round, in seconds (default 1). */
  readonly seconds?: number;
  /** Rounds, odd; the median is reported (default 3). */
  readonly rounds?: number;
}

/** Runs the benchmark and returns its figures. */
export async function benchNitro(options: BenchNitroOptions = {}): Promise<BenchRow[]> {
  const seconds = options.seconds ?? 1;
  const rounds = options.rounds ?? 3;
  const now = new Date();
  const ca = await createSimulatedNitroCa({ now });
  const trustAnchors = [...AWS_NITRO_TRUST_ANCHORS, simulatedNitroTrustAnchor(ca)];
  const doc = await simulateNitroDocument(ca, { now, userData: new Uint8Array(32).fill(1) });
  const evidence = parseNitroDocument(doc);
  const leafKey = parseCertificate(evidence.certificate, 'leaf').publicKey;
  const signed = sigStructure1(evidence.protectedHeader, evidence.payload);
  const cache = new X509Cache();

  const cases: Record<string, () => void> = {
    'ecdsa-p384.verify (baseline)': () => {
      if (!verify('sha384', signed, { key: leafKey, dsaEncoding: 'ieee-p1363' }, evidence.signature))
        throw new Error('bad');
    },
    'nitro.parse': () => {
      parseNitroDocument(doc);
    },
    'nitro.parse+verify (no cache)': () => {
      verifyNitroDocument(parseNitroDocument(doc), { trustAnchors, now });
    },
    'nitro.parse+verify (cached)': () => {
      verifyNitroDocument(parseNitroDocument(doc), { trustAnchors, now, cache });
    },
  };
  return verifyCostRows(cases, 'ecdsa-p384.verify (baseline)', { seconds, rounds });
}
