/**
 * Pins the embedded AWS Nitro root G1 (style §13): its SHA-256 computed from the embedded PEM equals the
 * constant, the published fingerprint in ../shared/vectors/nitro/aws-nitro-root-g1.json, and the DER of
 * the published PEM file; and it is cabundle[0] of every real document.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  AWS_NITRO_ROOT_G1,
  AWS_NITRO_ROOT_G1_PEM,
  AWS_NITRO_ROOT_G1_SHA256,
  AWS_NITRO_TRUST_ANCHORS,
  parseNitroDocument,
} from '../../attestation/nitro/index.js';
import { decodeCertificatePem, parseCertificate } from '../../attestation/x509/index.js';

const VECTORS = path.resolve(import.meta.dirname, '../../../shared/vectors/nitro');
const present = fs.existsSync(path.join(VECTORS, 'aws-nitro-root-g1.json'));
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe('AWS Nitro root G1 (embedded)', () => {
  it('the fingerprint computed from the embedded PEM equals AWS_NITRO_ROOT_G1_SHA256', () => {
    expect(sha256(decodeCertificatePem(AWS_NITRO_ROOT_G1_PEM))).toBe(AWS_NITRO_ROOT_G1_SHA256);
  });

  it('is the published root: CN=aws.nitro-enclaves, P-384, 2019-10-28 .. 2049-10-28, a CA', () => {
    const root = parseCertificate(AWS_NITRO_ROOT_G1_PEM, 'root');
    expect(root.subject).toBe('C=US, O=Amazon, OU=AWS, CN=aws.nitro-enclaves');
    expect(root.selfIssued).toBe(true);
    expect(root.publicKey.asymmetricKeyDetails?.namedCurve).toBe('secp384r1');
    expect(new Date(root.notBefore).toISOString()).toBe('2019-10-28T13:28:05.000Z');
    expect(new Date(root.notAfter).toISOString()).toBe('2049-10-28T14:28:05.000Z');
    expect(root.basicConstraints).toEqual({ ca: true, pathLength: null });
    expect(root.x509.verify(root.publicKey)).toBe(true);
  });

  it('is the one default anchor, not simulated', () => {
    expect(AWS_NITRO_TRUST_ANCHORS).toEqual([AWS_NITRO_ROOT_G1]);
    expect(AWS_NITRO_ROOT_G1.simulated).toBe(false);
  });
});

describe.skipIf(!present)('AWS Nitro root G1 against ../shared/vectors/nitro', () => {
  it('equals the fingerprint published in aws-nitro-root-g1.json and the DER of aws-nitro-root-g1.pem', () => {
    const meta = JSON.parse(fs.readFileSync(path.join(VECTORS, 'aws-nitro-root-g1.json'), 'utf8')) as {
      sha256_der_fingerprint: string;
      der_length: number;
    };
    expect(AWS_NITRO_ROOT_G1_SHA256).toBe(meta.sha256_der_fingerprint);
    const filePem = fs.readFileSync(path.join(VECTORS, 'aws-nitro-root-g1.pem'), 'utf8');
    const der = decodeCertificatePem(filePem);
    expect(der).toHaveLength(meta.der_length);
    expect(Buffer.from(der).equals(Buffer.from(decodeCertificatePem(AWS_NITRO_ROOT_G1_PEM)))).toBe(true);
  });

  it('is cabundle[0] of every real document', () => {
    const index = JSON.parse(fs.readFileSync(path.join(VECTORS, 'index.json'), 'utf8')) as {
      vectors: { name: string }[];
    };
    for (const { name } of index.vectors) {
      const ev = parseNitroDocument(new Uint8Array(fs.readFileSync(path.join(VECTORS, `${name}.cbor`))));
      expect(sha256(ev.cabundle[0]!), name).toBe(AWS_NITRO_ROOT_G1_SHA256);
    }
  });
});

describe.skipIf(present)('AWS Nitro root G1 against ../shared/vectors/nitro', () => {
  it.skip('skipped: ../shared/vectors/nitro is absent', () => {});
});
