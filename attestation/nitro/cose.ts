/**
 * COSE_Sign1 pieces for Nitro documents (RFC 9052 §4.2 COSE_Sign1, §4.4 Sig_structure).
 *
 * The signature covers the CBOR encoding of
 *   Sig_structure = ["Signature1", body_protected: bstr, external_aad: bstr, payload: bstr]
 * where body_protected is the protected header exactly as it was carried (never re-encoded) and
 * external_aad is empty for Nitro. The array is written here by hand, with shortest-form heads
 * (RFC 8949 §4.2.1), so that the bytes are fixed by this file rather than by an encoder's options.
 *
 * What is left out: COSE_Sign (several signers), countersignatures, detached payloads, and any
 * algorithm other than ES384 (-35, RFC 9053 §2.1).
 */

/** The protected header of every Nitro document: {1: -35} (alg: ES384), CBOR a1 01 38 22. */
export const ES384_PROTECTED_HEADER: Uint8Array = Uint8Array.of(0xa1, 0x01, 0x38, 0x22);

/** COSE algorithm identifier of ES384 (RFC 9053 §2.1). */
export const COSE_ALG_ES384 = -35;

/** Length of an ES384 signature: r ‖ s, 48 bytes each (RFC 9053 §2.1). */
export const ES384_SIGNATURE_BYTES = 96;

/** CBOR tag of a tagged COSE_Sign1 (RFC 9052 §2). */
export const COSE_SIGN1_TAG = 18;

const CONTEXT_SIGNATURE1 = new TextEncoder().encode('Signature1');

/** A shortest-form CBOR head for `major` with argument `length`. */
function head(major: number, length: number): Uint8Array {
  const m = major << 5;
  if (length < 24) return Uint8Array.of(m | length);
  if (length < 0x100) return Uint8Array.of(m | 24, length);
  if (length < 0x10000) return Uint8Array.of(m | 25, length >> 8, length & 0xff);
  return Uint8Array.of(
    m | 26,
    (length >>> 24) & 0xff,
    (length >> 16) & 0xff,
    (length >> 8) & 0xff,
    length & 0xff,
  );
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

const bstr = (bytes: Uint8Array): Uint8Array[] => [head(2, bytes.length), bytes];

/**
 * The bytes an ES384 COSE_Sign1 signature covers: CBOR of ["Signature1", protected, external_aad, payload].
 * `protectedHeader` and `payload` are the contents of the document's bstrs, unchanged.
 */
export function sigStructure1(
  protectedHeader: Uint8Array,
  payload: Uint8Array,
  externalAad: Uint8Array = new Uint8Array(0),
): Uint8Array {
  return concat([
    head(4, 4),
    head(3, CONTEXT_SIGNATURE1.length),
    CONTEXT_SIGNATURE1,
    ...bstr(protectedHeader),
    ...bstr(externalAad),
    ...bstr(payload),
  ]);
}

/** What `encodeCoseSign1` writes. */
export interface CoseSign1Parts {
  readonly protectedHeader: Uint8Array;
  readonly payload: Uint8Array;
  readonly signature: Uint8Array;
  /** Prefix CBOR tag 18 (AWS's documents are untagged). Default false. */
  readonly tagged?: boolean;
}

/** Encodes [protected, {}, payload, signature] (empty unprotected header), optionally tagged 18. */
export function encodeCoseSign1(parts: CoseSign1Parts): Uint8Array {
  return concat([
    ...(parts.tagged === true ? [head(6, COSE_SIGN1_TAG)] : []),
    head(4, 4),
    ...bstr(parts.protectedHeader),
    head(5, 0),
    ...bstr(parts.payload),
    ...bstr(parts.signature),
  ]);
}
