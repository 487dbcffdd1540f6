/**
 * shared/key-schedule.ts: the per-message key and commitment of blobs and streams. The byte-exact values are pinned by
 * the vectors (test/crypto/vectors.test.ts, with an independent reader); here: separation and the v2 length rule.
 */
import { describe, expect, it } from 'vitest';
import { deriveMessageKeys } from '../../shared/key-schedule.js';
import { getSuite, type Suite, SuiteId } from '../../shared/suites.js';
import { detBytes, expectCode } from './helpers.js';

const KEY = detBytes('schedule key', 32);
const SALT = detBytes('schedule salt', 32);
const P = detBytes('prefix', 11);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('deriveMessageKeys', () => {
  it('separates schedules and kinds: the four (version, kind) pairs give four different outputs', () => {
    const outputs = new Set<string>();
    for (const id of [SuiteId.Aes256GcmHkdfSha384CommitV1, SuiteId.Aes256GcmKdfCtrHmacSha512CommitV2]) {
      for (const kind of ['BLOB', 'STREAM'] as const) {
        const k = deriveMessageKeys(getSuite(id), kind, KEY, SALT, P);
        expect(k.key).toHaveLength(32);
        expect(k.commitment).toHaveLength(32);
        expect(hex(k.okm)).toBe(hex(k.key) + hex(k.commitment));
        outputs.add(hex(k.okm));
      }
    }
    expect(outputs.size).toBe(4);
  });

  it('a v2 suite whose key and commitment do not fill the HMAC block is refused (SUITE_UNKNOWN)', () => {
    const short = {
      ...getSuite(SuiteId.Aes256GcmKdfCtrHmacSha512CommitV2),
      commitmentBytes: 16,
    } as unknown as Suite;
    expectCode(() => deriveMessageKeys(short, 'BLOB', KEY, SALT, P), 'SUITE_UNKNOWN', /must fill 64 bytes/);
  });
});
