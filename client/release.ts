/**
 * Opening a released key (docs/protocol.md §6): the enclave's response is a signed statement (CBOR) carrying an
 * HPKE ciphertext (X-Wing / HKDF-SHA256 / AES-256-GCM) to the workload's recipient key. `openRelease` checks the
 * enclave's Ed25519 signature with the identity key that the session's verified evidence binds, checks the
 * statement names this recipient key, and opens the HPKE ciphertext.
 */
import { createHash, verify } from 'node:crypto';
import { decodeCbor, encodeCbor } from '../shared/cbor.js';
import { CryptoError } from '../shared/crypto-errors.js';
import { ProtocolError } from '../shared/errors.js';
import { HPKE_SUITE, hpkeOpen } from '../shared/hpke.js';
import type { Params } from '../shared/messages.js';
import { ed25519PublicKey } from '../shared/session.js';
import type { XWingDecapsulationKey } from '../shared/xwing.js';

export const RELEASE_CONTEXT = 'ekms-release-v1';

/** A release as the enclave returns it. */
export interface Release {
  readonly keyId: string;
  readonly keyVersion: number;
  /** The signed statement (CBOR bytes). */
  readonly release: Uint8Array;
  readonly signature: Uint8Array;
  /** GenerateDataKey: the data key sealed under the KEK, to store beside the data. */
  readonly ciphertextBlob?: Uint8Array;
}

/** @throws ProtocolError MESSAGE_INVALID */
export function parseRelease(r: Params): Release {
  const { keyId, keyVersion, release, signature, ciphertextBlob } = r;
  if (
    typeof keyId !== 'string' ||
    typeof keyVersion !== 'number' ||
    !(release instanceof Uint8Array) ||
    !(signature instanceof Uint8Array)
  ) {
    throw new ProtocolError('MESSAGE_INVALID', 'a release result is ill-typed');
  }
  return {
    keyId,
    keyVersion,
    release,
    signature,
    ...(ciphertextBlob instanceof Uint8Array ? { ciphertextBlob } : {}),
  };
}

/**
 * Verifies and opens a release. `enclaveIdentity` is the 32-byte Ed25519 key of the attested enclave
 * (`EkmsClient.enclaveIdentity` of the session that received the release; Nitro and SEV-SNP alike).
 * @throws CryptoError SIGNATURE_INVALID-like failures as DECRYPT_FAILED (bad signature, other recipient, bad
 *   ciphertext); ProtocolError MESSAGE_INVALID (malformed statement)
 */
export function openRelease(
  r: Release,
  recipient: { secretKey: Uint8Array | XWingDecapsulationKey; publicKey: Uint8Array },
  enclaveIdentity: Uint8Array,
): { material: Uint8Array; statement: Readonly<Record<string, unknown>> } {
  const content = Buffer.concat([Buffer.from(`${RELEASE_CONTEXT} `), r.release]);
  /* Precondition: the statement is signed by the attested enclave's identity key. */
  if (!verify(null, content, ed25519PublicKey(enclaveIdentity), r.signature)) {
    throw new CryptoError('DECRYPT_FAILED', "the release statement's signature does not verify");
  }
  let s: Record<string, unknown>;
  try {
    s = decodeCbor(r.release) as Record<string, unknown>;
  } catch (cause) {
    throw new ProtocolError('MESSAGE_INVALID', 'the release statement is not CBOR', { cause });
  }
  const digest = createHash('sha256').update(recipient.publicKey).digest();
  /* Precondition: the statement names our recipient key, this key and version, and the HPKE suite we speak. */
  if (
    !(s['recipient'] instanceof Uint8Array) ||
    !digest.equals(Buffer.from(s['recipient'])) ||
    s['keyId'] !== r.keyId ||
    s['keyVersion'] !== r.keyVersion ||
    s['suite'] !== HPKE_SUITE.id ||
    !(s['enc'] instanceof Uint8Array) ||
    !(s['ciphertext'] instanceof Uint8Array) ||
    !(s['requestDigest'] instanceof Uint8Array)
  ) {
    throw new ProtocolError('MESSAGE_INVALID', 'the release statement does not match this recipient and key');
  }
  const signedBlob = s['ciphertextBlob'];
  /* Precondition: the ciphertext blob beside the statement is the one the enclave signed (or both are absent). */
  if (
    signedBlob === undefined
      ? r.ciphertextBlob !== undefined
      : !(signedBlob instanceof Uint8Array) ||
        r.ciphertextBlob === undefined ||
        !Buffer.from(signedBlob).equals(Buffer.from(r.ciphertextBlob))
  ) {
    throw new ProtocolError(
      'MESSAGE_INVALID',
      'the ciphertext blob of the release is not the one its signed statement names',
    );
  }
  const info = encodeCbor({
    ctx: RELEASE_CONTEXT,
    op: s['op'],
    keyId: s['keyId'],
    keyVersion: s['keyVersion'],
    requestDigest: s['requestDigest'],
  });
  const material = hpkeOpen(recipient.secretKey, s['enc'], info, new Uint8Array(0), s['ciphertext']);
  return { material, statement: s };
}
