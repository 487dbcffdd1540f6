/**
 * Real AWS Nitro attestation documents (../shared/vectors/nitro, read in place, never copied): each one
 * the publisher ships as valid verifies at its sidecar's `verification_time` with the embedded AWS root
 * and yields exactly the sidecar's fields; each is rejected at `expired_time` (the leaf has expired) and
 * one second before the leaf's notBefore. `eternis-invalid-1` is rejected for its signature. Provenance
 * of every document is in its sidecar (`source`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AttestationError } from '../../attestation/errors.js';
import {
  AWS_NITRO_TRUST_ANCHORS,
  type NitroEvidence,
  parseNitroDocument,
  verifyNitroDocument,
} from '../../attestation/nitro/index.js';
import { buildCertificatePath, ECDSA_P384_SHA384, X509Cache } from '../../attestation/x509/index.js';

const VECTORS = path.resolve(import.meta.dirname, '../../../shared/vectors/nitro');
const present = fs.existsSync(path.join(VECTORS, 'index.json'));

interface OptionalField {
  readonly present: boolean;
  readonly hex?: string;
  readonly length?: number;
}

interface Sidecar {
  readonly expected_valid: boolean;
  readonly module_id: string;
  readonly timestamp: number;
  readonly timestamp_iso: string;
  readonly pcr0: string;
  readonly pcrs: Readonly<Record<string, string>>;
  readonly debug_mode: boolean;
  readonly cabundle_count: number;
  readonly leaf_not_before: string;
  readonly verification_time: string;
  readonly expired_time: string;
  readonly signature_valid: boolean;
  readonly chain_valid: boolean;
  readonly public_key: OptionalField;
  readonly user_data: OptionalField;
  readonly nonce: OptionalField;
  readonly note: string;
  readonly encoding: {
    readonly cose_tag18: boolean;
    readonly protected_header_hex: string;
    readonly payload_map: string;
  };
}

interface IndexEntry {
  readonly name: string;
}

const index: { vectors: IndexEntry[] } = present
  ? JSON.parse(fs.readFileSync(path.join(VECTORS, 'index.json'), 'utf8'))
  : { vectors: [] };
const load = (name: string): { bytes: Uint8Array; side: Sidecar } => ({
  bytes: new Uint8Array(fs.readFileSync(path.join(VECTORS, `${name}.cbor`))),
  side: JSON.parse(fs.readFileSync(path.join(VECTORS, `${name}.json`), 'utf8')) as Sidecar,
});
const valid = index.vectors.filter((v) => load(v.name).side.expected_valid);
const invalid = index.vectors.filter((v) => !load(v.name).side.expected_valid);

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AttestationError);
    return (err as AttestationError).code;
  }
  return 'no error';
}

const optionalHex = (f: OptionalField): string | null => (f.present ? f.hex! : null);

describe.skipIf(!present)('Nitro real vectors (../shared/vectors/nitro)', () => {
  it('the index lists 38 documents, one of them shipped as invalid', () => {
    expect(index.vectors).toHaveLength(38);
    expect(invalid.map((v) => v.name)).toEqual(['eternis-invalid-1']);
  });

  describe.each(valid.map((v) => [v.name]))('%s', (name) => {
    const { bytes, side } = load(name);

    it('parses: untagged COSE_Sign1, ES384 protected header, sidecar fields', () => {
      const ev = parseNitroDocument(bytes);
      expect(ev.tagged).toBe(side.encoding.cose_tag18);
      expect(Buffer.from(ev.protectedHeader).toString('hex')).toBe(side.encoding.protected_header_hex);
      expect(ev.signature).toHaveLength(96);
      expect(ev.moduleId).toBe(side.module_id);
      expect(ev.timestamp).toBe(side.timestamp);
      expect(ev.cabundle).toHaveLength(side.cabundle_count);
    });

    it('verifies at verification_time and yields exactly the sidecar claims', () => {
      const claims = verifyNitroDocument(parseNitroDocument(bytes), {
        trustAnchors: AWS_NITRO_TRUST_ANCHORS,
        now: new Date(side.verification_time),
      });
      expect(claims).toEqual({
        type: 'nitro',
        debug: side.debug_mode,
        timestamp: side.timestamp_iso,
        measurement: side.pcr0,
        rootFingerprint: '641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b',
        simulated: false,
        moduleId: side.module_id,
        pcrs: side.pcrs,
        userData: optionalHex(side.user_data),
        nonce: optionalHex(side.nonce),
        publicKey: optionalHex(side.public_key),
      });
    });

    it('is rejected at expired_time with CERT_EXPIRED', () => {
      const ev = parseNitroDocument(bytes);
      expect(
        codeOf(() =>
          verifyNitroDocument(ev, {
            trustAnchors: AWS_NITRO_TRUST_ANCHORS,
            now: new Date(side.expired_time),
          }),
        ),
      ).toBe('CERT_EXPIRED');
    });

    it('is rejected one second before the leaf notBefore with CERT_NOT_YET_VALID', () => {
      const ev = parseNitroDocument(bytes);
      const early = new Date(Date.parse(side.leaf_not_before) - 1000);
      expect(
        codeOf(() => verifyNitroDocument(ev, { trustAnchors: AWS_NITRO_TRUST_ANCHORS, now: early })),
      ).toBe('CERT_NOT_YET_VALID');
    });
  });

  it('verifies every valid document with one shared cache, twice, with the same claims', () => {
    const cache = new X509Cache();
    for (const { name } of valid) {
      const { bytes, side } = load(name);
      const opts = { trustAnchors: AWS_NITRO_TRUST_ANCHORS, now: new Date(side.verification_time), cache };
      const first = verifyNitroDocument(parseNitroDocument(bytes), opts);
      const second = verifyNitroDocument(parseNitroDocument(bytes), opts);
      expect(second, name).toEqual(first);
    }
    expect(cache.stats.linkHits).toBeGreaterThanOrEqual(valid.length * 4);
  });

  describe('eternis-invalid-1', () => {
    // Loaded lazily: describe bodies run at collection time even when the suite is skipped.
    let cached: ReturnType<typeof load> | undefined;
    const vector = (): ReturnType<typeof load> => {
      cached ??= load('eternis-invalid-1');
      return cached;
    };

    it('is shipped as invalid because its payload was altered after signing (sidecar note)', () => {
      const { side } = vector();
      expect(side.expected_valid).toBe(false);
      expect(side.signature_valid).toBe(false);
      expect(side.chain_valid).toBe(true);
      expect(side.note).toMatch(/COSE signature does not verify/);
    });

    it('has a genuine chain: the certificate path validates at verification_time', () => {
      const { bytes, side } = vector();
      const ev: NitroEvidence = parseNitroDocument(bytes);
      const built = buildCertificatePath({
        leaf: ev.certificate,
        intermediates: ev.cabundle,
        trustAnchors: AWS_NITRO_TRUST_ANCHORS,
        now: new Date(side.verification_time),
        algorithms: [ECDSA_P384_SHA384],
      });
      expect(built.certificates).toHaveLength(5);
    });

    it('is rejected with EVIDENCE_SIGNATURE_INVALID (the COSE signature does not verify)', () => {
      const { bytes, side } = vector();
      const ev = parseNitroDocument(bytes);
      expect(() =>
        verifyNitroDocument(ev, {
          trustAnchors: AWS_NITRO_TRUST_ANCHORS,
          now: new Date(side.verification_time),
        }),
      ).toThrow(
        expect.objectContaining({
          code: 'EVIDENCE_SIGNATURE_INVALID',
          message: expect.stringMatching(/COSE_Sign1 signature/),
        }),
      );
    });
  });
});

describe.skipIf(present)('Nitro real vectors', () => {
  it.skip('skipped: ../shared/vectors/nitro is absent (real hardware documents are read in place, never copied)', () => {});
});
