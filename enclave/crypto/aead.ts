/**
 * One AEAD interface over the registered suites (shared/suites.ts; design §4, §7).
 *
 * - AES-256-GCM (NIST SP 800-38D) through `node:crypto` (OpenSSL): the fast path, ~50× faster than pure JS.
 * - XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha, RFC 8439) through `@noble/ciphers`: the second suite, which
 *   proves the formats are algorithm-agile; fine for small blobs (~100 MB/s).
 *
 * The interface is one-shot and stateless: `seal` returns `ciphertext ‖ tag`, `open` takes the same and returns
 * the plaintext or throws DECRYPT_FAILED. Keys are borrowed, never copied or kept: the caller owns the key
 * buffer and zeroes it (the blob and stream code zero their derived keys in `finally`). Copies made inside
 * OpenSSL are cleansed when its cipher context is freed; noble wipes its internal subkeys.
 * No primitive is implemented here.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { CryptoError } from '../../shared/crypto-errors.js';
import { AeadAlgorithm, getSuite, type Suite } from '../../shared/suites.js';

/** An AEAD bound to one suite. */
export interface Aead {
  readonly suite: Suite;
  /**
   * Encrypts and authenticates. Returns a new array `ciphertext ‖ tag`.
   * @throws CryptoError KEY_INVALID, CRYPTO_PARAMETER_INVALID (nonce length).
   */
  seal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array;
  /**
   * Verifies and decrypts `ciphertext ‖ tag`. Never returns unauthenticated plaintext.
   * @throws CryptoError DECRYPT_FAILED (tag), CIPHERTEXT_TRUNCATED (shorter than a tag), KEY_INVALID,
   *   CRYPTO_PARAMETER_INVALID (nonce length).
   */
  open(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array;
}

function checkKeyAndNonce(suite: Suite, key: Uint8Array, nonce: Uint8Array): void {
  /* Precondition: the key is a byte array of the suite's key length. */
  if (!(key instanceof Uint8Array) || key.length !== suite.keyBytes) {
    throw new CryptoError('KEY_INVALID', `${suite.name} needs a ${suite.keyBytes}-byte key`);
  }
  /* Precondition: the nonce is a byte array of the suite's nonce length. */
  if (!(nonce instanceof Uint8Array) || nonce.length !== suite.nonceBytes) {
    throw new CryptoError('CRYPTO_PARAMETER_INVALID', `${suite.name} needs a ${suite.nonceBytes}-byte nonce`);
  }
}

function authFailed(cause?: unknown): CryptoError {
  return new CryptoError(
    'DECRYPT_FAILED',
    'authentication failed: the ciphertext, its header or the encryption context differs from what was sealed',
    cause === undefined ? {} : { cause },
  );
}

function aesGcm(suite: Suite): Aead {
  return {
    suite,
    seal(key, nonce, plaintext, aad) {
      checkKeyAndNonce(suite, key, nonce);
      const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: suite.tagBytes });
      cipher.setAAD(aad);
      const body = cipher.update(plaintext);
      cipher.final();
      const tag = cipher.getAuthTag();
      const out = new Uint8Array(body.length + tag.length);
      out.set(body, 0);
      out.set(tag, body.length);
      return out;
    },
    open(key, nonce, sealed, aad) {
      checkKeyAndNonce(suite, key, nonce);
      /* Precondition: the sealed bytes hold at least a tag. */
      if (sealed.length < suite.tagBytes) {
        throw new CryptoError(
          'CIPHERTEXT_TRUNCATED',
          `sealed data is shorter than the ${suite.tagBytes}-byte tag`,
        );
      }
      const split = sealed.length - suite.tagBytes;
      const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: suite.tagBytes });
      decipher.setAAD(aad);
      decipher.setAuthTag(sealed.subarray(split));
      const body = decipher.update(sealed.subarray(0, split));
      try {
        /* Precondition: the tag verifies before any plaintext leaves this function. */
        decipher.final();
      } catch (cause) {
        body.fill(0);
        throw authFailed(cause);
      }
      return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    },
  };
}

function xchacha(suite: Suite): Aead {
  return {
    suite,
    seal(key, nonce, plaintext, aad) {
      checkKeyAndNonce(suite, key, nonce);
      return xchacha20poly1305(key, nonce, aad).encrypt(plaintext);
    },
    open(key, nonce, sealed, aad) {
      checkKeyAndNonce(suite, key, nonce);
      if (sealed.length < suite.tagBytes) {
        throw new CryptoError(
          'CIPHERTEXT_TRUNCATED',
          `sealed data is shorter than the ${suite.tagBytes}-byte tag`,
        );
      }
      try {
        /* Precondition: the tag verifies before any plaintext leaves this function (noble checks it first). */
        return xchacha20poly1305(key, nonce, aad).decrypt(sealed);
      } catch (cause) {
        throw authFailed(cause);
      }
    },
  };
}

const cache = new Map<number, Aead>();

/**
 * The AEAD of a suite, by suite id.
 * @throws CryptoError SUITE_UNKNOWN if the id is not registered.
 */
export function getAead(suiteId: number): Aead {
  const suite = getSuite(suiteId);
  let aead = cache.get(suite.id);
  if (aead === undefined) {
    aead = suite.aead === AeadAlgorithm.Aes256Gcm ? aesGcm(suite) : xchacha(suite);
    cache.set(suite.id, aead);
  }
  return aead;
}
