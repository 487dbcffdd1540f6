/**
 * Adversarial review of attestation/nitro: what the COSE_Sign1 signature covers versus what is read.
 *
 * Finding: the protected header was checked on its decoded value only (a Map of size 1 with 1 → -35),
 * so a signed header {1: -7, 1: -35} (duplicate key: cbor-x keeps the last, a first-wins reader sees
 * ES256), {1: -35.0} (a float) or a non-shortest -35 verified. The header must now be the exact bytes
 * a1 01 38 22, as in every real document.
 *
 * Pins: the signature covers the carried protected header and payload bytes (not a re-encoding), a
 * document given as a Node Buffer is copied (later changes to the caller's buffer change nothing), and
 * duplicate payload/PCR keys hidden by float/int aliasing are rejected.
 */
import { sign } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { AttestationError } from '../../attestation/errors.js';
import {
  ES384_PROTECTED_HEADER,
  encodeCoseSign1,
  encodeNitroPayload,
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
} from '../../attestation/simulated/nitro.js';
import { decodeCertificatePem, type TrustAnchor } from '../../attestation/x509/index.js';

const NOW = new Date('2026-05-01T10:00:00.000Z');

let ca: SimulatedNitroCa;
let leaf: SimulatedNitroLeaf;
let anchor: TrustAnchor;
let cabundle: Uint8Array[];

beforeAll(async () => {
  ca = await createSimulatedNitroCa({ now: NOW });
  leaf = await issueSimulatedNitroLeaf(ca, { now: NOW });
  anchor = simulatedNitroTrustAnchor(ca);
  cabundle = ca.certificates.map((pem, i) => decodeCertificatePem(pem, `ca #${i}`));
});

function payload(pcrs?: Map<number, Uint8Array>): Uint8Array {
  return encodeNitroPayload({
    moduleId: leaf.moduleId,
    digest: 'SHA384',
    timestamp: NOW.getTime(),
    pcrs: pcrs ?? new Map([0, 1, 2, 3].map((i) => [i, new Uint8Array(48).fill(i + 1)] as const)),
    certificate: leaf.certificate,
    cabundle,
    publicKey: null,
    userData: Uint8Array.of(1, 2, 3),
    nonce: null,
  });
}

/** A COSE_Sign1 correctly signed by the leaf over exactly these protected-header and payload bytes. */
function signed(protectedHeader: Uint8Array, body: Uint8Array = payload()): Uint8Array {
  const signature = sign('sha384', sigStructure1(protectedHeader, body), {
    key: leaf.privateKey,
    dsaEncoding: 'ieee-p1363',
  });
  return encodeCoseSign1({ protectedHeader, payload: body, signature: new Uint8Array(signature) });
}

function caught(fn: () => unknown): AttestationError {
  try {
    fn();
  } catch (err) {
    if (err instanceof AttestationError) return err;
    throw err;
  }
  throw new Error('expected an AttestationError, nothing was thrown');
}

const verify = (bytes: Uint8Array) =>
  verifyNitroDocument(parseNitroDocument(bytes), { trustAnchors: [anchor], now: NOW });

describe('review: the protected header is the exact bytes a1 01 38 22', () => {
  it('control: the canonical header, correctly signed, verifies', () => {
    expect(verify(signed(ES384_PROTECTED_HEADER)).moduleId).toBe(leaf.moduleId);
  });

  const aliases: readonly [string, readonly number[]][] = [
    ['a duplicated alg key {1: -7, 1: -35}', [0xa2, 0x01, 0x26, 0x01, 0x38, 0x22]],
    ['the alg as a float -35.0', [0xa1, 0x01, 0xfb, 0xc0, 0x41, 0x80, 0, 0, 0, 0, 0]],
    ['a non-shortest -35 (two-byte head)', [0xa1, 0x01, 0x39, 0x00, 0x22]],
    ['the label as a half-float 1.0', [0xa1, 0xf9, 0x3c, 0x00, 0x38, 0x22]],
  ];
  for (const [what, header] of aliases) {
    it(`rejects a correctly signed header with ${what} (EVIDENCE_MALFORMED)`, () => {
      const err = caught(() => parseNitroDocument(signed(Uint8Array.from(header))));
      expect(err.code).toBe('EVIDENCE_MALFORMED');
      expect(err.message).toMatch(/must be encoded as a1013822/);
    });
  }
});

describe('review: signed bytes are the carried bytes', () => {
  it('a signature over a re-encoded (equivalent) payload does not verify the carried one (EVIDENCE_SIGNATURE_INVALID)', () => {
    // The carried payload uses an indefinite-length map; the signature covers its definite re-encoding.
    const definite = payload();
    expect(definite[0]).toBe(0xa9); // map of 9 entries
    const indefinite = Uint8Array.from([0xbf, ...definite.subarray(1), 0xff]);
    const signature = sign('sha384', sigStructure1(ES384_PROTECTED_HEADER, definite), {
      key: leaf.privateKey,
      dsaEncoding: 'ieee-p1363',
    });
    const bytes = encodeCoseSign1({
      protectedHeader: ES384_PROTECTED_HEADER,
      payload: indefinite,
      signature: new Uint8Array(signature),
    });
    const err = caught(() => verify(bytes));
    expect(err.code).toBe('EVIDENCE_SIGNATURE_INVALID');
    // Signed as carried, the same indefinite payload verifies.
    expect(verify(signed(ES384_PROTECTED_HEADER, indefinite)).userData).toBe('010203');
  });

  it('a Buffer document is copied: changing the caller buffer afterwards changes neither evidence nor claims', () => {
    const buffer = Buffer.from(signed(ES384_PROTECTED_HEADER));
    const evidence = parseNitroDocument(buffer);
    const before = verifyNitroDocument(evidence, { trustAnchors: [anchor], now: NOW });
    buffer.fill(0);
    expect(evidence.bytes.some((b) => b !== 0)).toBe(true);
    expect(verifyNitroDocument(evidence, { trustAnchors: [anchor], now: NOW })).toEqual(before);
  });

  it('rejects PCR keys 1 (uint) and 1.0 (float) in one map, even correctly signed (EVIDENCE_MALFORMED)', () => {
    // Build the pcrs map by hand: {0: p0, 1: p1, 2: p2, 1.0: other}.
    const body = payload(new Map([0, 1, 2, 3].map((i) => [i, new Uint8Array(48).fill(7)] as const)));
    const pcr3 = Uint8Array.from([0x03, 0x58, 0x30, ...new Uint8Array(48).fill(7)]);
    const aliased = Uint8Array.from([0xf9, 0x3c, 0x00, 0x58, 0x30, ...new Uint8Array(48).fill(9)]);
    const hex = Buffer.from(body).toString('hex');
    const at = hex.indexOf(Buffer.from(pcr3).toString('hex'));
    expect(at).toBeGreaterThan(0);
    const edited = Buffer.from(
      hex.slice(0, at) + Buffer.from(aliased).toString('hex') + hex.slice(at + pcr3.length * 2),
      'hex',
    );
    const err = caught(() => parseNitroDocument(signed(ES384_PROTECTED_HEADER, new Uint8Array(edited))));
    expect(err.code).toBe('EVIDENCE_MALFORMED');
    expect(err.message).toMatch(/PCR index appears more than once/);
  });
});
