/**
 * Property tests (style §12) of the certificate parser, the first thing an outsider's evidence reaches: mutations
 * of real certificates (the embedded AWS Nitro and AMD roots, a simulated Nitro chain) — bit flips, byte edits biased
 * to DER tags and lengths, insertions, deletions, truncations — parse or fail with a typed CERT_INVALID, never a plain
 * Error. Aimed at the certificate bytes directly, this finds in seconds what mutating whole Nitro documents reaches
 * only rarely: it found a certificate whose value the ASN.1 reader read but could not re-encode (a plain Error).
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { AttestationError } from '../../attestation/errors.js';
import { AWS_NITRO_ROOT_G1_PEM } from '../../attestation/nitro/index.js';
import { AMD_GENOA_ARK_PEM, AMD_MILAN_ARK_PEM, AMD_MILAN_ASK_PEM } from '../../attestation/sev-snp/roots.js';
import { createSimulatedNitroCa } from '../../attestation/simulated/nitro.js';
import { parseCertificate, X509Cache } from '../../attestation/x509/index.js';
import { applyMutation, byteMutation } from '../helpers/byte-mutations.js';
import { runs } from '../helpers/property-runs.js';

const certificates: Uint8Array[] = [];

beforeAll(async () => {
  const ca = await createSimulatedNitroCa({ now: new Date('2026-05-05T05:05:05.000Z') });
  for (const pem of [
    AWS_NITRO_ROOT_G1_PEM,
    AMD_MILAN_ARK_PEM,
    AMD_MILAN_ASK_PEM,
    AMD_GENOA_ARK_PEM,
    ...ca.certificates,
  ]) {
    certificates.push(parseCertificate(pem, 'subject').der);
  }
});

/** DER bytes a mutation likes to write: tags (INTEGER … GeneralizedTime, SEQUENCE, SET, context tags) and lengths. */
const DER_BYTES = [
  0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0c, 0x13, 0x16, 0x17, 0x18, 0x1e, 0x30, 0x31, 0x7f, 0x80, 0x81,
  0x82, 0x83, 0x84, 0xa0, 0xa3, 0xff,
];

/** Uniform mutations, and as many again writing DER tags and lengths. */
const mutation = fc.oneof(byteMutation(), byteMutation(fc.constantFrom(...DER_BYTES)));

/** Parses `der`; anything thrown that is not AttestationError CERT_INVALID fails the property. */
function parseOrTypedError(der: Uint8Array, cache?: X509Cache): void {
  try {
    parseCertificate(der, 'mutated', cache);
  } catch (err) {
    if (!(err instanceof AttestationError)) throw err;
    expect(err.code).toBe('CERT_INVALID');
  }
}

describe('parseCertificate: property tests', () => {
  it('mutated certificates parse or fail with CERT_INVALID, never a plain Error', () => {
    const cache = new X509Cache({ maxEntries: 64 });
    fc.assert(
      fc.property(
        fc.nat(),
        fc.array(mutation, { minLength: 1, maxLength: 6 }),
        fc.boolean(),
        (which, ms, cached) => {
          const original = certificates[which % certificates.length]!;
          parseOrTypedError(ms.reduce(applyMutation, original), cached ? cache : undefined);
        },
      ),
      { numRuns: runs(4000) },
    );
  });

  it('random bytes behind a SEQUENCE header fail with CERT_INVALID', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 600 }), (body) => {
        const der = Uint8Array.from([0x30, 0x82, body.length >> 8, body.length & 0xff, ...body]);
        parseOrTypedError(der);
      }),
      { numRuns: runs(2000) },
    );
  });
});
