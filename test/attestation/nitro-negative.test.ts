/**
 * One named negative test per check of `parseNitroDocument` / `verifyNitroDocument` (style §5): each
 * builds a document that differs from a valid one in exactly one respect, asserts the error code, then
 * the message. Documents come from the simulator (re-signed, so the one defect is the only one) and from
 * real vectors (re-encoded byte for byte; the control tests prove the re-encoding is exact).
 */
import { createHash, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { AttestationError } from '../../attestation/errors.js';
import {
  AWS_NITRO_TRUST_ANCHORS,
  ES384_PROTECTED_HEADER,
  encodeCoseSign1,
  type NitroEvidence,
  parseNitroDocument,
  sigStructure1,
  verifyNitroDocument,
} from '../../attestation/nitro/index.js';
import {
  createSimulatedNitroCa,
  issueSimulatedNitroLeaf,
  type SimulatedNitroCa,
  type SimulatedNitroLeaf,
  simulatedNitroTrustAnchor,
  simulateNitroDocument,
} from '../../attestation/simulated/nitro.js';
import { decodeCertificatePem, parseCertificate, type TrustAnchor } from '../../attestation/x509/index.js';
import { decodeCbor, encodeCbor } from '../../shared/cbor.js';
import { ConfigError } from '../../shared/errors.js';

const NOW = new Date('2026-03-01T12:00:00.000Z');
const VECTORS = path.resolve(import.meta.dirname, '../../../shared/vectors/nitro');
const vectorsPresent = fs.existsSync(path.join(VECTORS, 'index.json'));

let ca: SimulatedNitroCa;
let leaf: SimulatedNitroLeaf;
let anchors: TrustAnchor[];
let cabundle: Uint8Array[];

beforeAll(async () => {
  ca = await createSimulatedNitroCa({ now: new Date(NOW.getTime() - 86_400_000) });
  leaf = await issueSimulatedNitroLeaf(ca, { now: NOW });
  anchors = [...AWS_NITRO_TRUST_ANCHORS, simulatedNitroTrustAnchor(ca)];
  cabundle = ca.certificates.map((p) => decodeCertificatePem(p));
});

type Fields = Record<string, unknown>;

/** The payload fields of a valid document, as plain CBOR values (AWS key order). */
function baseFields(): Fields {
  const pcrs = new Map<number, Uint8Array>();
  for (let i = 0; i < 16; i++) pcrs.set(i, new Uint8Array(48).fill(i === 0 ? 0xab : 0));
  return {
    module_id: leaf.moduleId,
    digest: 'SHA384',
    timestamp: BigInt(NOW.getTime()),
    pcrs,
    certificate: leaf.certificate,
    cabundle: [...cabundle],
    public_key: null,
    user_data: null,
    nonce: null,
  };
}

interface BuildOptions {
  readonly protectedHeader?: Uint8Array;
  readonly key?: KeyObject;
  readonly signature?: Uint8Array;
}

/** A document whose payload is `payload`, correctly signed by `key` (the simulated leaf by default). */
function docFromPayload(payload: Uint8Array, options: BuildOptions = {}): Uint8Array {
  const protectedHeader = options.protectedHeader ?? ES384_PROTECTED_HEADER;
  const signature =
    options.signature ??
    new Uint8Array(
      sign('sha384', sigStructure1(protectedHeader, payload), {
        key: options.key ?? leaf.privateKey,
        dsaEncoding: 'ieee-p1363',
      }),
    );
  return encodeCoseSign1({ protectedHeader, payload, signature });
}

/** A signed document built from the base fields after `edit`. */
function doc(edit: (f: Fields) => void = () => {}, options: BuildOptions = {}): Uint8Array {
  const fields = baseFields();
  edit(fields);
  return docFromPayload(encodeCbor(fields), options);
}

function caught(fn: () => unknown): AttestationError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AttestationError);
    return err as AttestationError;
  }
  throw new Error('expected an AttestationError, nothing was thrown');
}

const verify = (bytes: Uint8Array, trust: readonly TrustAnchor[] = anchors, now = NOW) =>
  verifyNitroDocument(parseNitroDocument(bytes), { trustAnchors: trust, now });
const parseError = (bytes: Uint8Array) => caught(() => parseNitroDocument(bytes));
const verifyError = (bytes: Uint8Array, trust: readonly TrustAnchor[] = anchors, now = NOW) =>
  caught(() => verify(bytes, trust, now));

describe('Nitro negative tests: controls', () => {
  it('the base document built by these helpers verifies (so each defect below is the only one)', () => {
    const claims = verify(doc());
    expect(claims.moduleId).toBe(leaf.moduleId);
    expect(claims.simulated).toBe(true);
    expect(claims.debug).toBe(false);
  });

  it('a tagged (CBOR tag 18) document verifies', () => {
    const fields = baseFields();
    const payload = encodeCbor(fields);
    const sig = sign('sha384', sigStructure1(ES384_PROTECTED_HEADER, payload), {
      key: leaf.privateKey,
      dsaEncoding: 'ieee-p1363',
    });
    const bytes = encodeCoseSign1({
      protectedHeader: ES384_PROTECTED_HEADER,
      payload,
      signature: sig,
      tagged: true,
    });
    expect(bytes[0]).toBe(0xd2);
    expect(parseNitroDocument(bytes).tagged).toBe(true);
    expect(verify(bytes).moduleId).toBe(leaf.moduleId);
  });

  it('optional fields of exactly 1024 bytes verify', () => {
    const big = new Uint8Array(1024).fill(1);
    const claims = verify(
      doc((f) => {
        f['public_key'] = big;
        f['user_data'] = big;
        f['nonce'] = big;
      }),
    );
    expect(claims.userData).toHaveLength(2048);
  });

  it('absent optional fields read as null', () => {
    const claims = verify(
      doc((f) => {
        delete f['public_key'];
        delete f['user_data'];
        delete f['nonce'];
      }),
    );
    expect([claims.publicKey, claims.userData, claims.nonce]).toEqual([null, null, null]);
  });
});

describe('Nitro negative tests: framing', () => {
  it('rejects an empty document (EVIDENCE_TRUNCATED)', () => {
    const err = parseError(new Uint8Array(0));
    expect(err.code).toBe('EVIDENCE_TRUNCATED');
    expect(err.message).toMatch(/empty/);
  });

  it('rejects a truncated document (EVIDENCE_TRUNCATED)', () => {
    const bytes = doc();
    const err = parseError(bytes.subarray(0, bytes.length - 1));
    expect(err.code).toBe('EVIDENCE_TRUNCATED');
    expect(err.message).toMatch(/COSE_Sign1: CBOR ends early/);
  });

  it('rejects an oversized document (EVIDENCE_TOO_LARGE)', () => {
    const err = parseError(new Uint8Array(32 * 1024 + 1));
    expect(err.code).toBe('EVIDENCE_TOO_LARGE');
    expect(err.message).toMatch(/exceeds the limit of 32768/);
  });

  it('rejects trailing bytes after the COSE_Sign1 (EVIDENCE_TRAILING_BYTES)', () => {
    const bytes = doc();
    const err = parseError(Uint8Array.from([...bytes, 0x00]));
    expect(err.code).toBe('EVIDENCE_TRAILING_BYTES');
    expect(err.message).toMatch(/1 byte\(s\) after the CBOR item/);
  });

  it('rejects input that is not bytes (EVIDENCE_MALFORMED)', () => {
    const err = caught(() => parseNitroDocument('hello' as unknown as Uint8Array));
    expect(err.code).toBe('EVIDENCE_MALFORMED');
    expect(err.message).toMatch(/must be bytes/);
  });

  it('rejects a COSE_Sign1 that is not an array of 4 (EVIDENCE_MALFORMED)', () => {
    for (const value of [
      [1, 2, 3],
      new Map(),
      'text',
      [ES384_PROTECTED_HEADER, new Map(), new Uint8Array(4)],
    ]) {
      const err = parseError(encodeCbor(value));
      expect(err.code).toBe('EVIDENCE_MALFORMED');
      expect(err.message).toMatch(/array of 4 items/);
    }
  });

  it('rejects a CBOR tag other than 18 (EVIDENCE_MALFORMED)', () => {
    const err = parseError(Uint8Array.from([0xd3, ...doc()]));
    expect(err.code).toBe('EVIDENCE_MALFORMED');
    expect(err.message).toMatch(/tag 19 is not allowed/);
  });

  it('rejects a protected header with another algorithm (EVIDENCE_ALGORITHM_UNSUPPORTED)', () => {
    // {1: -7} (ES256), {1: -36} (ES512), {} and {1: -35, 4: h'00'} (an extra parameter).
    for (const header of [
      [0xa1, 0x01, 0x26],
      [0xa1, 0x01, 0x38, 0x23],
      [0xa0],
      [0xa2, 0x01, 0x38, 0x22, 0x04, 0x41, 0x00],
    ]) {
      const err = parseError(doc(undefined, { protectedHeader: Uint8Array.from(header) }));
      expect(err.code).toBe('EVIDENCE_ALGORITHM_UNSUPPORTED');
      expect(err.message).toMatch(/must be \{1: -35\} \(ES384\)/);
    }
  });

  it('rejects a protected header that is not a CBOR map (EVIDENCE_MALFORMED)', () => {
    const err = parseError(doc(undefined, { protectedHeader: Uint8Array.of(0x01) }));
    expect(err.code).toBe('EVIDENCE_MALFORMED');
    expect(err.message).toMatch(/not a CBOR map/);
  });

  it('rejects a non-empty unprotected header (EVIDENCE_FIELD_INVALID)', () => {
    const payload = encodeCbor(baseFields());
    const sig = sign('sha384', sigStructure1(ES384_PROTECTED_HEADER, payload), {
      key: leaf.privateKey,
      dsaEncoding: 'ieee-p1363',
    });
    const bytes = encodeCbor([ES384_PROTECTED_HEADER, new Map([[4, Uint8Array.of(1)]]), payload, sig]);
    const err = parseError(bytes);
    expect(err.code).toBe('EVIDENCE_FIELD_INVALID');
    expect(err.message).toMatch(/"unprotected": expected an empty map/);
  });

  it('rejects a detached (null) or empty payload (EVIDENCE_FIELD_INVALID)', () => {
    for (const payload of [null, new Uint8Array(0)]) {
      const err = parseError(encodeCbor([ES384_PROTECTED_HEADER, new Map(), payload, new Uint8Array(96)]));
      expect(err.code).toBe('EVIDENCE_FIELD_INVALID');
      expect(err.message).toMatch(/"payload": expected a non-empty byte string/);
    }
  });

  it('rejects a signature that is not 96 bytes (EVIDENCE_FIELD_INVALID)', () => {
    for (const length of [0, 64, 95, 97]) {
      const err = parseError(doc(undefined, { signature: new Uint8Array(length) }));
      expect(err.code).toBe('EVIDENCE_FIELD_INVALID');
      expect(err.message).toMatch(
        new RegExp(`"signature": expected a byte string of 96 bytes, got ${length}`),
      );
    }
  });

  it('rejects a payload that is not a map (EVIDENCE_MALFORMED)', () => {
    const err = parseError(docFromPayload(encodeCbor([1, 2, 3])));
    expect(err.code).toBe('EVIDENCE_MALFORMED');
    expect(err.message).toMatch(/payload is not a CBOR map/);
  });

  it('rejects a payload with a duplicate key (EVIDENCE_MALFORMED)', () => {
    const payload = encodeCbor(baseFields());
    expect(payload[0]).toBe(0xa9);
    // Ten entries: the nine of the base document plus a second "nonce": null.
    const dup = Uint8Array.from([0xaa, ...payload.subarray(1), ...encodeCbor('nonce'), 0xf6]);
    const err = parseError(docFromPayload(dup));
    expect(err.code).toBe('EVIDENCE_MALFORMED');
    expect(err.message).toMatch(/duplicate key/);
  });

  it('rejects a PCR index that appears twice (EVIDENCE_MALFORMED)', () => {
    const pcrs = new Map<number, Uint8Array>([
      [0, new Uint8Array(48)],
      [1, new Uint8Array(48)],
      [2, new Uint8Array(48)],
    ]);
    const encoded = encodeCbor(pcrs);
    // Same map with a fourth entry repeating index 2.
    const dup = Uint8Array.from([0xa4, ...encoded.subarray(1), 0x02, 0x58, 0x30, ...new Uint8Array(48)]);
    const fields = baseFields();
    fields['pcrs'] = 'PLACEHOLDER';
    const payload = encodeCbor(fields);
    const marker = encodeCbor('PLACEHOLDER');
    const at = Buffer.from(payload).indexOf(Buffer.from(marker));
    const spliced = Uint8Array.from([
      ...payload.subarray(0, at),
      ...dup,
      ...payload.subarray(at + marker.length),
    ]);
    const err = parseError(docFromPayload(spliced));
    expect(err.code).toBe('EVIDENCE_MALFORMED');
    expect(err.message).toMatch(/PCR index appears more than once/);
  });
});

describe('Nitro negative tests: payload fields', () => {
  const required = ['module_id', 'digest', 'timestamp', 'pcrs', 'certificate', 'cabundle'] as const;

  it.each(required)('rejects a document without %s (EVIDENCE_FIELD_INVALID)', (field) => {
    const err = parseError(doc((f) => delete f[field]));
    expect(err.code).toBe('EVIDENCE_FIELD_INVALID');
    expect(err.message).toBe(`Nitro document field "${field}": missing`);
    expect(err.details).toEqual({ field });
  });

  it('rejects an unknown field (EVIDENCE_FIELD_INVALID)', () => {
    const err = parseError(doc((f) => (f['extra'] = 1)));
    expect(err.code).toBe('EVIDENCE_FIELD_INVALID');
    expect(err.message).toMatch(/"extra": unknown field/);
  });

  it('rejects a payload key that is not text (EVIDENCE_FIELD_INVALID)', () => {
    const fields = new Map<unknown, unknown>(Object.entries(baseFields()));
    fields.set(7, null);
    const err = parseError(docFromPayload(encodeCbor(fields)));
    expect(err.code).toBe('EVIDENCE_FIELD_INVALID');
    expect(err.message).toMatch(/key 7 is not a text string/);
  });

  it('rejects the wrong digest (EVIDENCE_ALGORITHM_UNSUPPORTED)', () => {
    for (const digest of ['SHA256', 'sha384', 'SHA512', '']) {
      const err = parseError(doc((f) => (f['digest'] = digest)));
      expect(err.code).toBe('EVIDENCE_ALGORITHM_UNSUPPORTED');
      expect(err.message).toMatch(/is not supported \(only SHA384\)/);
    }
  });

  // Wrong types, field by field: each value is well-formed CBOR of a type the field does not allow.
  const wrongTypes: ReadonlyArray<readonly [string, unknown, RegExp]> = [
    ['module_id', 42, /non-empty text string/],
    ['module_id', '', /non-empty text string/],
    ['module_id', Uint8Array.of(0x69), /non-empty text string/],
    ['digest', Uint8Array.from(Buffer.from('SHA384')), /expected a text string/],
    ['digest', null, /expected a text string/],
    ['timestamp', '1700000000000', /expected an unsigned integer/],
    ['timestamp', -1, /expected an unsigned integer/],
    ['timestamp', 1.5, /expected an unsigned integer/],
    ['timestamp', 1_700_000_000_000.0 + 0.25, /expected an unsigned integer/],
    ['timestamp', 0, /out of range/],
    ['timestamp', 8_640_000_000_000_001n, /out of range/],
    ['pcrs', [new Uint8Array(48)], /expected a map/],
    ['pcrs', new Map(), /0 PCRs, expected 1..32/],
    ['certificate', 'MII...', /expected a byte string/],
    ['certificate', new Uint8Array(0), /0 bytes, expected 1..1024/],
    ['certificate', new Uint8Array(1025), /1025 bytes, expected 1..1024/],
    ['cabundle', new Uint8Array(10), /expected an array/],
    ['cabundle', [], /0 certificates, expected 1..8/],
    ['cabundle', Array.from({ length: 9 }, () => new Uint8Array(10)), /9 certificates, expected 1..8/],
    ['cabundle', ['text'], /cabundle\[0\]": expected a byte string/],
    ['cabundle', [new Uint8Array(1025)], /cabundle\[0\]": expected a byte string of 1..1024 bytes/],
    ['public_key', 'key', /expected a byte string/],
    ['public_key', 0, /expected a byte string/],
    ['public_key', new Uint8Array(1025), /1025 bytes, expected 0..1024/],
    ['user_data', new Uint8Array(1025), /1025 bytes, expected 0..1024/],
    ['user_data', false, /expected a byte string/],
    ['nonce', new Uint8Array(1025), /1025 bytes, expected 0..1024/],
    ['nonce', [], /expected a byte string/],
  ];

  it.each(wrongTypes.map(([f, v, m]) => [f, String(v).slice(0, 24), v, m] as const))(
    'rejects %s = %s (EVIDENCE_FIELD_INVALID)',
    (field, _label, value, message) => {
      const err = parseError(doc((f) => (f[field] = value)));
      expect(err.code).toBe('EVIDENCE_FIELD_INVALID');
      expect(err.message).toMatch(message);
      expect(err.details).toEqual({
        field: field === 'cabundle' && /\[0\]/.test(err.message) ? 'cabundle[0]' : field,
      });
    },
  );

  it('rejects an undefined (simple 23) optional field (EVIDENCE_FIELD_INVALID)', () => {
    const payload = encodeCbor(baseFields());
    const marker = Uint8Array.from([...encodeCbor('nonce'), 0xf6]);
    const at = Buffer.from(payload).lastIndexOf(Buffer.from(marker));
    const edited = Uint8Array.from(payload);
    edited[at + marker.length - 1] = 0xf7;
    const err = parseError(docFromPayload(edited));
    expect(err.code).toBe('EVIDENCE_FIELD_INVALID');
    expect(err.message).toMatch(/"nonce": expected a byte string/);
  });

  it('rejects user_data larger than 1024 bytes (EVIDENCE_FIELD_INVALID)', () => {
    const err = parseError(doc((f) => (f['user_data'] = new Uint8Array(1025))));
    expect(err.code).toBe('EVIDENCE_FIELD_INVALID');
    expect(err.message).toBe('Nitro document field "user_data": 1025 bytes, expected 0..1024');
  });

  it('rejects a PCR of the wrong length (EVIDENCE_FIELD_INVALID)', () => {
    for (const length of [0, 20, 47, 49, 65]) {
      const err = parseError(
        doc((f) => (f['pcrs'] as Map<number, Uint8Array>).set(3, new Uint8Array(length))),
      );
      expect(err.code).toBe('EVIDENCE_FIELD_INVALID');
      expect(err.message).toMatch(new RegExp(`PCR3 must be a byte string of 32/48/64 bytes, got ${length}`));
    }
  });

  it('accepts PCRs of 32 and 64 bytes', () => {
    const claims = verify(
      doc((f) => {
        (f['pcrs'] as Map<number, Uint8Array>).set(3, new Uint8Array(32)).set(4, new Uint8Array(64));
      }),
    );
    expect(claims.pcrs['3']).toHaveLength(64);
    expect(claims.pcrs['4']).toHaveLength(128);
  });

  it('rejects too many PCRs (EVIDENCE_FIELD_INVALID)', () => {
    const err = parseError(
      doc((f) => {
        const pcrs = f['pcrs'] as Map<number, Uint8Array>;
        for (let i = 16; i < 32; i++) pcrs.set(i, new Uint8Array(48));
        pcrs.set(32, new Uint8Array(48));
      }),
    );
    expect(err.code).toBe('EVIDENCE_FIELD_INVALID');
    expect(err.message).toMatch(/33 PCRs, expected 1..32/);
  });

  it('rejects a PCR index outside 0..31 or not an unsigned integer (EVIDENCE_FIELD_INVALID)', () => {
    for (const index of [32, -1, 255]) {
      const err = parseError(
        doc((f) => (f['pcrs'] as Map<number, Uint8Array>).set(index, new Uint8Array(48))),
      );
      expect(err.code).toBe('EVIDENCE_FIELD_INVALID');
      expect(err.message).toMatch(/is not an unsigned integer in 0..31/);
    }
    const err = parseError(
      doc((f) => {
        const pcrs = new Map<unknown, Uint8Array>(f['pcrs'] as Map<number, Uint8Array>);
        pcrs.set('5', new Uint8Array(48));
        f['pcrs'] = pcrs;
      }),
    );
    expect(err.code).toBe('EVIDENCE_FIELD_INVALID');
    expect(err.message).toMatch(/PCR index 5 is not an unsigned integer/);
  });

  it('rejects a document without PCR0, PCR1 or PCR2 (EVIDENCE_FIELD_INVALID)', () => {
    for (const missing of [0, 1, 2]) {
      const err = parseError(doc((f) => (f['pcrs'] as Map<number, Uint8Array>).delete(missing)));
      expect(err.code).toBe('EVIDENCE_FIELD_INVALID');
      expect(err.message).toMatch(new RegExp(`PCR${missing} is missing`));
    }
  });
});

describe('Nitro negative tests: signature and chain', () => {
  it('rejects a COSE signature with one bit flipped (EVIDENCE_SIGNATURE_INVALID)', () => {
    const bytes = doc();
    bytes[bytes.length - 1]! ^= 0x01;
    const err = verifyError(bytes);
    expect(err.code).toBe('EVIDENCE_SIGNATURE_INVALID');
    expect(err.message).toMatch(/does not verify under its certificate/);
  });

  it('rejects a payload with one byte changed (EVIDENCE_SIGNATURE_INVALID)', () => {
    const bytes = doc();
    const at = Buffer.from(bytes).indexOf(Buffer.from(leaf.moduleId));
    bytes[at] = 'j'.charCodeAt(0); // "i-…" → "j-…": still valid text, no longer what was signed
    expect(parseNitroDocument(bytes).moduleId.startsWith('j-')).toBe(true);
    const err = verifyError(bytes);
    expect(err.code).toBe('EVIDENCE_SIGNATURE_INVALID');
  });

  it('rejects a signature made by another P-384 key (EVIDENCE_SIGNATURE_INVALID)', () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
    const err = verifyError(doc(undefined, { key: other }));
    expect(err.code).toBe('EVIDENCE_SIGNATURE_INVALID');
  });

  it('rejects a leaf whose certificate signature is broken (CERT_CHAIN_INVALID)', () => {
    const broken = Uint8Array.from(leaf.certificate);
    broken[broken.length - 1]! ^= 0x01; // last byte of the ECDSA s value
    const err = verifyError(doc((f) => (f['certificate'] = broken)));
    expect(err.code).toBe('CERT_CHAIN_INVALID');
    expect(err.message).toMatch(
      /signature of the certificate \(leaf\) certificate does not verify under the key of cabundle\[3\]/,
    );
  });

  it('rejects an intermediate whose certificate signature is broken (CERT_CHAIN_INVALID)', () => {
    const broken = Uint8Array.from(cabundle[2]!);
    broken[broken.length - 1]! ^= 0x01;
    const err = verifyError(doc((f) => ((f['cabundle'] as Uint8Array[])[2] = broken)));
    expect(err.code).toBe('CERT_CHAIN_INVALID');
    expect(err.message).toMatch(
      /signature of the cabundle\[2\] certificate does not verify under the key of cabundle\[1\]/,
    );
  });

  it('rejects a simulated document when only the AWS root is trusted (CERT_ROOT_UNTRUSTED)', async () => {
    const bytes = await simulateNitroDocument(ca, { now: NOW });
    const err = verifyError(bytes, AWS_NITRO_TRUST_ANCHORS);
    expect(err.code).toBe('CERT_ROOT_UNTRUSTED');
    expect(err.message).toMatch(/CN=sim\.nitro-enclaves.*is not a trust anchor/);
  });

  it('rejects a look-alike root: same subject name as the AWS root, another key (CERT_ROOT_UNTRUSTED)', async () => {
    const fake = await createSimulatedNitroCa({
      now: new Date(NOW.getTime() - 3_600_000),
      root: { commonName: 'aws.nitro-enclaves', organization: 'Amazon', organizationalUnit: 'AWS' },
    });
    const fakeRoot = parseCertificate(fake.certificates[0], 'fake root');
    const awsRoot = parseCertificate(AWS_NITRO_TRUST_ANCHORS[0]!.certificate, 'aws root');
    // The names are byte-identical, so only the pinned fingerprint tells them apart.
    expect(Buffer.from(fakeRoot.subjectDer).equals(Buffer.from(awsRoot.subjectDer))).toBe(true);
    expect(fakeRoot.fingerprint).not.toBe(awsRoot.fingerprint);
    const bytes = await simulateNitroDocument(fake, { now: NOW });
    const err = verifyError(bytes, AWS_NITRO_TRUST_ANCHORS);
    expect(err.code).toBe('CERT_ROOT_UNTRUSTED');
    expect(err.message).toMatch(
      /"C=US, O=Amazon, OU=AWS, CN=aws\.nitro-enclaves" \(SHA-256 [0-9a-f]{64}\), which is not a trust anchor/,
    );
  });

  it('rejects a document when no trust anchor is configured (CERT_ROOT_UNTRUSTED)', () => {
    const err = verifyError(doc(), []);
    expect(err.code).toBe('CERT_ROOT_UNTRUSTED');
    expect(err.message).toMatch(/no trust anchors/);
  });

  it('rejects a cabundle missing an intermediate (CERT_CHAIN_INVALID)', () => {
    for (const drop of [1, 2, 3]) {
      const err = verifyError(doc((f) => (f['cabundle'] as Uint8Array[]).splice(drop, 1)));
      expect(err.code).toBe('CERT_CHAIN_INVALID');
      expect(err.message).toMatch(/no certificate among the intermediates and trust anchors is named/);
    }
  });

  it('rejects a cabundle without its root, even when the root is trusted (CERT_CHAIN_INVALID)', () => {
    const err = verifyError(doc((f) => (f['cabundle'] as Uint8Array[]).splice(0, 1)));
    expect(err.code).toBe('CERT_CHAIN_INVALID');
    expect(err.message).toMatch(/cabundle\[0\] the trusted root/);
  });

  it('rejects a cabundle out of AWS order (CERT_CHAIN_INVALID)', () => {
    const err = verifyError(doc((f) => (f['cabundle'] as Uint8Array[]).reverse()));
    expect(err.code).toBe('CERT_CHAIN_INVALID');
    expect(err.message).toMatch(/AWS order/);
  });

  it('rejects a cabundle with an extra, unused certificate (CERT_CHAIN_INVALID)', async () => {
    const other = await createSimulatedNitroCa({ now: new Date(NOW.getTime() - 3_600_000) });
    const err = verifyError(
      doc((f) => (f['cabundle'] as Uint8Array[]).push(decodeCertificatePem(other.certificates[2]))),
    );
    expect(err.code).toBe('CERT_CHAIN_INVALID');
    expect(err.message).toMatch(/AWS order/);
  });

  it('rejects an expired leaf (CERT_EXPIRED)', () => {
    const later = new Date(NOW.getTime() + 3 * 3_600_000 + 1000);
    const err = verifyError(doc(), anchors, later);
    expect(err.code).toBe('CERT_EXPIRED');
    expect(err.message).toMatch(/certificate \(leaf\) certificate expired at 2026-03-01T15:00:00\.000Z/);
  });

  it('accepts the leaf at its last valid instant (notAfter is inclusive)', () => {
    expect(verify(doc(), anchors, new Date(NOW.getTime() + 3 * 3_600_000)).moduleId).toBe(leaf.moduleId);
  });

  it('rejects a leaf that is not yet valid (CERT_NOT_YET_VALID)', () => {
    const err = verifyError(doc(), anchors, new Date(NOW.getTime() - 1000));
    expect(err.code).toBe('CERT_NOT_YET_VALID');
    expect(err.message).toMatch(
      /certificate \(leaf\) certificate is not valid before 2026-03-01T12:00:00\.000Z/,
    );
  });

  it('rejects an expired intermediate (CERT_EXPIRED)', async () => {
    // The CA's intermediates live 10 years; the leaf is issued (3 h) inside that window's last hours.
    const late = new Date(parseCertificate(ca.certificates[1], 'intermediate').notAfter + 1000);
    const lateLeaf = await issueSimulatedNitroLeaf(ca, { now: new Date(late.getTime() - 3_600_000) });
    const bytes = await simulateNitroDocument(ca, {
      now: new Date(late.getTime() - 3_600_000),
      leaf: lateLeaf,
    });
    const err = verifyError(bytes, anchors, late);
    expect(err.code).toBe('CERT_EXPIRED');
    expect(err.message).toMatch(/cabundle\[[123]\] certificate expired/);
  });

  it('rejects a leaf whose key is not P-384 (CERT_INVALID)', async () => {
    const p256 = await issueSimulatedNitroLeaf(ca, { now: NOW, namedCurve: 'P-256' });
    // A P-256 key cannot make a 96-byte ES384 signature: pad one so parsing passes and the key check decides.
    const err = verifyError(
      doc((f) => (f['certificate'] = p256.certificate), { signature: new Uint8Array(96).fill(1) }),
    );
    expect(err.code).toBe('CERT_INVALID');
    expect(err.message).toMatch(/key is not ECDSA P-384/);
  });

  it('rejects a leaf that is a CA (CERT_INVALID)', async () => {
    const caLeaf = await issueSimulatedNitroLeaf(ca, { now: NOW, ca: true });
    const err = verifyError(doc((f) => (f['certificate'] = caLeaf.certificate), { key: caLeaf.privateKey }));
    expect(err.code).toBe('CERT_INVALID');
    expect(err.message).toMatch(/is a CA certificate/);
  });

  it('rejects a leaf whose keyUsage lacks digitalSignature (CERT_INVALID)', async () => {
    const encLeaf = await issueSimulatedNitroLeaf(ca, { now: NOW, keyUsage: ['keyEncipherment'] });
    const err = verifyError(
      doc((f) => (f['certificate'] = encLeaf.certificate), { key: encLeaf.privateKey }),
    );
    expect(err.code).toBe('CERT_INVALID');
    expect(err.message).toMatch(/keyUsage lacks digitalSignature/);
  });

  it('rejects a certificate that is not DER X.509 (CERT_INVALID)', () => {
    const err = verifyError(doc((f) => (f['certificate'] = Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x01))));
    expect(err.code).toBe('CERT_INVALID');
    expect(err.message).toMatch(/certificate \(leaf\) certificate/);
  });
});

describe('Nitro negative tests: options and evidence object', () => {
  it('requires `now` (ConfigError CONFIG_INVALID)', () => {
    const ev = parseNitroDocument(doc());
    for (const now of [undefined, new Date(Number.NaN), '2026-01-01']) {
      expect(() => verifyNitroDocument(ev, { trustAnchors: anchors, now } as never)).toThrow(ConfigError);
    }
  });

  it('requires `trustAnchors` (ConfigError CONFIG_INVALID)', () => {
    const ev = parseNitroDocument(doc());
    expect(() => verifyNitroDocument(ev, { now: NOW } as never)).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringMatching(/trustAnchors/) }),
    );
  });

  it('re-parses the bytes and ignores every other field of the evidence object', () => {
    const ev = parseNitroDocument(doc());
    const forged: NitroEvidence = { ...ev, moduleId: 'forged', pcrs: new Map([[0, new Uint8Array(48)]]) };
    const claims = verifyNitroDocument(forged, { trustAnchors: anchors, now: NOW });
    expect(claims.moduleId).toBe(leaf.moduleId);
    expect(claims.measurement).toBe('ab'.repeat(48));
  });
});

describe.skipIf(!vectorsPresent)(
  'Nitro negative tests on a real document (aws-samples-1, re-encoded)',
  () => {
    const load = () => new Uint8Array(fs.readFileSync(path.join(VECTORS, 'aws-samples-1.cbor')));
    const AT = new Date('2023-03-28T11:57:00Z');
    const outerOf = (bytes: Uint8Array) =>
      decodeCbor(bytes, { maps: true, textKeysOnly: false, maxBytes: 65_536 }) as [
        Uint8Array,
        Map<number, unknown>,
        Uint8Array,
        Uint8Array,
      ];
    const payloadOf = (bytes: Uint8Array) =>
      decodeCbor(outerOf(bytes)[2], {
        maps: true,
        textKeysOnly: false,
        allowIndefinite: true,
        maxBytes: 65_536,
      }) as Map<string, unknown>;
    const rebuild = (bytes: Uint8Array, edit: (p: Map<string, unknown>) => void): Uint8Array => {
      const [prot, unprot, , sig] = outerOf(bytes);
      const payload = payloadOf(bytes);
      edit(payload);
      return encodeCbor([prot, unprot, encodeCbor(payload), sig]);
    };
    const realError = (bytes: Uint8Array) => caught(() => verify(bytes, AWS_NITRO_TRUST_ANCHORS, AT));

    it('control: decoding and re-encoding without edits gives the same bytes, which verify', () => {
      const bytes = load();
      const same = rebuild(bytes, () => {});
      expect(createHash('sha256').update(same).digest('hex')).toBe(
        createHash('sha256').update(bytes).digest('hex'),
      );
      expect(verify(same, AWS_NITRO_TRUST_ANCHORS, AT).moduleId).toBe(
        'i-0f6f8b2fe86b3853c-enc018728132a5a6b2c',
      );
    });

    it('rejects a COSE signature bit flip (EVIDENCE_SIGNATURE_INVALID)', () => {
      const bytes = load();
      bytes[bytes.length - 10]! ^= 0x80;
      expect(realError(bytes).code).toBe('EVIDENCE_SIGNATURE_INVALID');
    });

    it('rejects a changed PCR value (EVIDENCE_SIGNATURE_INVALID)', () => {
      const bytes = rebuild(load(), (p) =>
        (p.get('pcrs') as Map<number, Uint8Array>).set(0, new Uint8Array(48).fill(1)),
      );
      const err = realError(bytes);
      expect(err.code).toBe('EVIDENCE_SIGNATURE_INVALID');
    });

    it('rejects a broken intermediate signature (CERT_CHAIN_INVALID)', () => {
      const bytes = rebuild(load(), (p) => {
        const bundle = p.get('cabundle') as Uint8Array[];
        const broken = Uint8Array.from(bundle[1]!);
        broken[broken.length - 1]! ^= 0x01;
        bundle[1] = broken;
      });
      const err = realError(bytes);
      expect(err.code).toBe('CERT_CHAIN_INVALID');
      expect(err.message).toMatch(/cabundle\[1\] certificate does not verify under the key of trust anchor/);
    });

    it('rejects a look-alike root in cabundle[0] (CERT_CHAIN_INVALID: the real root is not the one carried)', async () => {
      const fake = await createSimulatedNitroCa({
        now: new Date('2023-01-01T00:00:00Z'),
        root: { commonName: 'aws.nitro-enclaves', organization: 'Amazon', organizationalUnit: 'AWS' },
      });
      const bytes = rebuild(
        load(),
        (p) => ((p.get('cabundle') as Uint8Array[])[0] = decodeCertificatePem(fake.certificates[0])),
      );
      const err = realError(bytes);
      expect(err.code).toBe('CERT_CHAIN_INVALID');
      expect(err.message).toMatch(/cabundle\[0\] the trusted root/);
    });

    it('rejects a missing cabundle entry (CERT_CHAIN_INVALID)', () => {
      const bytes = rebuild(load(), (p) => (p.get('cabundle') as Uint8Array[]).splice(2, 1));
      expect(realError(bytes).code).toBe('CERT_CHAIN_INVALID');
    });

    it('rejects the wrong digest (EVIDENCE_ALGORITHM_UNSUPPORTED)', () => {
      const bytes = rebuild(load(), (p) => p.set('digest', 'SHA256'));
      expect(realError(bytes).code).toBe('EVIDENCE_ALGORITHM_UNSUPPORTED');
    });

    it('rejects a PCR of the wrong length (EVIDENCE_FIELD_INVALID)', () => {
      const bytes = rebuild(load(), (p) =>
        (p.get('pcrs') as Map<number, Uint8Array>).set(4, new Uint8Array(47)),
      );
      const err = realError(bytes);
      expect(err.code).toBe('EVIDENCE_FIELD_INVALID');
      expect(err.message).toMatch(/PCR4/);
    });

    it('rejects user_data of 1025 bytes (EVIDENCE_FIELD_INVALID)', () => {
      const bytes = rebuild(load(), (p) => p.set('user_data', new Uint8Array(1025)));
      expect(realError(bytes).code).toBe('EVIDENCE_FIELD_INVALID');
    });

    it('rejects a missing module_id (EVIDENCE_FIELD_INVALID)', () => {
      const bytes = rebuild(load(), (p) => p.delete('module_id'));
      expect(realError(bytes).message).toBe('Nitro document field "module_id": missing');
    });

    it('rejects a protected header naming ES256 (EVIDENCE_ALGORITHM_UNSUPPORTED)', () => {
      const [, unprot, payload, sig] = outerOf(load());
      const bytes = encodeCbor([Uint8Array.of(0xa1, 0x01, 0x26), unprot, payload, sig]);
      expect(realError(bytes).code).toBe('EVIDENCE_ALGORITHM_UNSUPPORTED');
    });

    it('rejects a truncated real document (EVIDENCE_TRUNCATED) and trailing bytes (EVIDENCE_TRAILING_BYTES)', () => {
      const bytes = load();
      expect(realError(bytes.subarray(0, 100)).code).toBe('EVIDENCE_TRUNCATED');
      expect(realError(Uint8Array.from([...bytes, 0xf6])).code).toBe('EVIDENCE_TRAILING_BYTES');
    });
  },
);
