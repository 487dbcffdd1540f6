/**
 * Property tests (style §12): random bytes and random mutations (truncation, bit flips, byte edits,
 * insertions, deletions) of real and simulated Nitro documents never crash or hang the parser or the
 * verifier: the outcome is always a typed AttestationError (or, for a mutation that changes nothing
 * signed, the original claims). Thousands of cases, kept under a few seconds with a shared X509Cache.
 */
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import type { NitroClaims } from '../../attestation/claims.js';
import { AttestationError } from '../../attestation/errors.js';
import {
  AWS_NITRO_TRUST_ANCHORS,
  parseNitroDocument,
  verifyNitroDocument,
} from '../../attestation/nitro/index.js';
import {
  createSimulatedNitroCa,
  simulatedNitroTrustAnchor,
  simulateNitroDocument,
} from '../../attestation/simulated/nitro.js';
import { type TrustAnchor, X509Cache } from '../../attestation/x509/index.js';
import { encodeCbor } from '../../shared/cbor.js';
import { applyMutation, byteMutation } from '../helpers/byte-mutations.js';
import { runs } from '../helpers/property-runs.js';

const VECTORS = path.resolve(import.meta.dirname, '../../../shared/vectors/nitro');
const vectorsPresent = fs.existsSync(path.join(VECTORS, 'index.json'));

interface Subject {
  readonly name: string;
  readonly bytes: Uint8Array;
  readonly now: Date;
  readonly anchors: readonly TrustAnchor[];
  readonly claims: NitroClaims;
}

const subjects: Subject[] = [];
const cache = new X509Cache({ maxEntries: 512 });

beforeAll(async () => {
  const now = new Date('2026-05-05T05:05:05.000Z');
  const ca = await createSimulatedNitroCa({ now: new Date(now.getTime() - 60_000) });
  const anchors = [...AWS_NITRO_TRUST_ANCHORS, simulatedNitroTrustAnchor(ca)];
  const sim = await simulateNitroDocument(ca, {
    now,
    userData: new Uint8Array(64).fill(9),
    nonce: new Uint8Array(16).fill(3),
    publicKey: new Uint8Array(97).fill(4),
  });
  const docs: Omit<Subject, 'claims'>[] = [{ name: 'simulated', bytes: sim, now, anchors }];
  if (vectorsPresent) {
    for (const name of ['aws-samples-1', 'turnkey-2']) {
      const side = JSON.parse(fs.readFileSync(path.join(VECTORS, `${name}.json`), 'utf8')) as {
        verification_time: string;
      };
      docs.push({
        name,
        bytes: new Uint8Array(fs.readFileSync(path.join(VECTORS, `${name}.cbor`))),
        now: new Date(side.verification_time),
        anchors: AWS_NITRO_TRUST_ANCHORS,
      });
    }
  }
  for (const d of docs) {
    subjects.push({
      ...d,
      claims: verifyNitroDocument(parseNitroDocument(d.bytes), {
        trustAnchors: d.anchors,
        now: d.now,
        cache,
      }),
    });
  }
});

type Outcome =
  | { readonly ok: true; readonly claims: NitroClaims }
  | { readonly ok: false; readonly code: string };

/** Parse then verify; anything thrown that is not an AttestationError fails the property. */
function run(bytes: Uint8Array, subject: Subject): Outcome {
  try {
    const claims = verifyNitroDocument(parseNitroDocument(bytes), {
      trustAnchors: subject.anchors,
      now: subject.now,
      cache,
    });
    return { ok: true, claims };
  } catch (err) {
    if (!(err instanceof AttestationError)) throw err;
    return { ok: false, code: err.code };
  }
}

/** A mutation either fails with a typed error or — when it left the signed content intact — yields the same claims. */
function assertSafe(bytes: Uint8Array, subject: Subject): Outcome {
  const outcome = run(bytes, subject);
  if (outcome.ok) expect(outcome.claims).toEqual(subject.claims);
  return outcome;
}

const mutation = byteMutation();

describe('Nitro parser and verifier: property tests', () => {
  it('random bytes never crash: always a typed AttestationError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => {
        expect(run(bytes, subjects[0]!).ok).toBe(false);
      }),
      { numRuns: runs(3000) },
    );
  });

  it('random CBOR values as the whole document or as the payload never crash', () => {
    const value = fc.anything({
      maxDepth: 3,
      maxKeys: 6,
      withMap: true,
      withBigInt: true,
      withTypedArray: false,
      withNullPrototype: false,
      withObjectString: false,
      withBoxedValues: false,
      withSparseArray: false,
    });
    fc.assert(
      fc.property(value, fc.boolean(), (v, asPayload) => {
        let bytes: Uint8Array;
        try {
          bytes = encodeCbor(v);
        } catch {
          return; // not encodable by cbor-x (e.g. symbols): nothing to test
        }
        const doc = asPayload
          ? encodeCbor([Uint8Array.of(0xa1, 0x01, 0x38, 0x22), new Map(), bytes, new Uint8Array(96)])
          : bytes;
        expect(run(doc, subjects[0]!).ok).toBe(false);
      }),
      { numRuns: runs(1500) },
    );
  });

  it('every truncation of every subject document is a typed error', () => {
    for (const subject of subjects) {
      // Exhaustive over the first 64 and last 64 lengths, sampled in between.
      const lengths = new Set<number>();
      for (let i = 0; i < 64; i++) lengths.add(i).add(subject.bytes.length - 1 - i);
      for (let i = 64; i < subject.bytes.length - 64; i += 7) lengths.add(i);
      for (const n of lengths) {
        const outcome = run(subject.bytes.subarray(0, n), subject);
        expect(outcome.ok, `${subject.name} truncated to ${n}`).toBe(false);
        if (!outcome.ok) expect(outcome.code, `${subject.name} truncated to ${n}`).toMatch(/^EVIDENCE_/);
      }
    }
  });

  it('single bit flips of real and simulated documents never crash and are never accepted with other claims', () => {
    for (const subject of subjects) {
      fc.assert(
        fc.property(fc.nat({ max: subject.bytes.length - 1 }), fc.integer({ min: 0, max: 7 }), (at, bit) => {
          assertSafe(applyMutation(subject.bytes, { kind: 'flip', at, value: bit }), subject);
        }),
        { numRuns: runs(1500) },
      );
    }
  });

  it('random sequences of mutations never crash', () => {
    for (const subject of subjects) {
      fc.assert(
        fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (ms) => {
          assertSafe(ms.reduce(applyMutation, subject.bytes), subject);
        }),
        { numRuns: runs(800) },
      );
    }
  });
});
