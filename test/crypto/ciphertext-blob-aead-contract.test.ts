/**
 * sealBlob's postcondition (enclave/crypto/ciphertext-blob.ts): the blob comes from pooled, uninitialized memory, so
 * the AEAD output must fill the rest of it exactly. No shipped suite can break this; an AEAD that returns one byte
 * too few or too many (as a future suite or a wrapper bug could) must be refused with CRYPTO_PARAMETER_INVALID
 * instead of leaving leftovers of the pool in a blob, or overrunning it.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { sealBlob } from '../../enclave/crypto/ciphertext-blob.js';
import { SUITES, type SuiteId } from '../../shared/suites.js';
import { detBytes, expectCode } from './helpers.js';

/** How many bytes the mocked AEAD adds to (or drops from) what it seals; 0: the real output. */
let skew = 0;

vi.mock('../../enclave/crypto/aead.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../enclave/crypto/aead.js')>();
  return {
    ...real,
    getAead: (suiteId: number) => {
      const aead = real.getAead(suiteId);
      return {
        ...aead,
        seal: (...args: Parameters<typeof aead.seal>) => {
          const out = aead.seal(...args);
          if (skew === 0) return out;
          if (skew < 0) return out.subarray(0, out.length + skew);
          const longer = new Uint8Array(out.length + skew);
          longer.set(out);
          return longer;
        },
      };
    },
  };
});

const input = (suite: SuiteId) => ({
  suite,
  keyId: 'key-1234',
  keyVersion: 1,
  key: detBytes('blob kek', 32),
  plaintext: detBytes('pt', 100),
  context: { tenant: 'acme' },
});

describe.each(Object.values(SUITES))('sealBlob and its AEAD, $name', (suite) => {
  afterEach(() => {
    skew = 0;
  });

  it('seals through the (pass-through) mock as usual', () => {
    expect(sealBlob(input(suite.id)).length).toBeGreaterThan(100 + suite.tagBytes);
  });

  for (const s of [-1, 1]) {
    it(`an AEAD output ${s < 0 ? 'one byte short' : 'one byte long'} → CRYPTO_PARAMETER_INVALID`, () => {
      skew = s;
      expectCode(() => sealBlob(input(suite.id)), 'CRYPTO_PARAMETER_INVALID', /returned \d+ sealed bytes/);
    });
  }
});
