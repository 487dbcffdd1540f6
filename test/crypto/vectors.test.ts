/**
 * Test vectors of the ciphertext formats (docs/ciphertext-format.md §7), kept as data in
 * test/vectors/crypto-vectors.json (style §11).
 *
 * GENERATOR: `EKMS_REGEN_VECTORS=1 npx vitest run test/crypto/vectors.test.ts` rewrites the JSON from the fixed
 * inputs below (randomness injected through the explicit `testRandom` parameter). Without the variable the
 * generator is skipped and the committed file is checked:
 *   1. each vector decrypts with the implementation, and re-encrypts to identical bytes with its fixed randomness;
 *   2. each vector is also opened by an independent reader written from the document alone (layout, HKDF labels,
 *      nonces, AAD) using node:crypto, @noble/ciphers and @noble/hashes directly (both key schedules from
 *      @noble/hashes, not the implementation's node:crypto) — so the document and the code agree.
 */
import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { hkdf as nobleHkdf } from '@noble/hashes/hkdf.js';
import { hmac as nobleHmac } from '@noble/hashes/hmac.js';
import { sha384, sha512 } from '@noble/hashes/sha2.js';
import { describe, expect, it, vi } from 'vitest';
import { encryptEnvelope, type StreamFormatVersion } from '../../client/envelope-stream.js';
import { openBlob, parseBlob, sealBlob } from '../../enclave/crypto/ciphertext-blob.js';
import { contextDigest, encodeContext } from '../../shared/encryption-context.js';
import { getSuite, SuiteId } from '../../shared/suites.js';
import { concatBytes, decryptAll, detBytes } from './helpers.js';

const VECTORS_PATH = path.resolve(import.meta.dirname, '../vectors/crypto-vectors.json');
const REGEN = process.env['EKMS_REGEN_VECTORS'] === '1';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const unhex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));
const fixed = (bytes: Uint8Array) => (n: number) => {
  if (n !== bytes.length) throw new Error(`fixed randomness of ${bytes.length} bytes, asked for ${n}`);
  return bytes.slice();
};

interface ContextVector {
  name: string;
  context: Record<string, string>;
  encoding: string;
  sha256: string;
}
interface BlobVector {
  name: string;
  suite: string;
  suiteId: number;
  key: string;
  keyId: string;
  keyVersion: number;
  context: Record<string, string>;
  plaintext: string;
  salt: string;
  blobKey: string;
  commitment: string;
  blob: string;
}
interface StreamVector {
  name: string;
  formatVersion: number;
  suite: string;
  suiteId: number;
  dataKey: string;
  encryptedDataKey: string;
  keyId: string;
  context: Record<string, string>;
  chunkSize: number;
  plaintext: string;
  messageId: string;
  streamKey: string;
  commitment: string;
  /** Format 1: SHA-256 of the whole header (starts every record's AAD). Format 2: of the header before the commitment (in P). */
  headerDigest: string;
  stream: string;
}
interface VectorFile {
  description: string;
  generatedBy: string;
  contexts: ContextVector[];
  blobs: BlobVector[];
  streams: StreamVector[];
}

// ---------------------------------------------------------------------------------------------------------
// An independent reader, written from docs/ciphertext-format.md only. It shares no code with the implementation.
// ---------------------------------------------------------------------------------------------------------

const ascii = (s: string) => new TextEncoder().encode(s);
const u16 = (n: number) => Uint8Array.of(n >> 8, n & 0xff);

function refContextEncoding(ctx: Record<string, string>): Uint8Array {
  const entries = Object.entries(ctx).map(
    ([k, v]) => [Buffer.from(k, 'utf8'), Buffer.from(v, 'utf8')] as const,
  );
  entries.sort((a, b) => Buffer.compare(a[0], b[0]));
  return concatBytes([
    u16(entries.length),
    ...entries.flatMap(([k, v]) => [u16(k.length), k, u16(v.length), v]),
  ]);
}

/** AES-256-GCM suites (the others are XChaCha20-Poly1305). */
const isAes = (suiteId: number) => suiteId === 1 || suiteId === 3;
const u32 = (n: number) => Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);

/**
 * The key schedule, split into (key, commitment): suites 1-2 HKDF-SHA-384 to 64 bytes (@noble/hashes); suites 3-4 the
 * SP 800-108r1 counter-mode KDF with HMAC-SHA-512, one block, computed with @noble/hashes' HMAC (not the
 * implementation's node:crypto call).
 */
function refKeys(
  suiteId: number,
  key: Uint8Array,
  salt: Uint8Array,
  kind: 'BLOB' | 'STREAM',
  p: Uint8Array,
): [Uint8Array, Uint8Array] {
  const okm =
    suiteId <= 2
      ? nobleHkdf(sha384, key, salt, concatBytes([ascii(`EKMS-${kind}-V1`), p]), 64)
      : nobleHmac(
          sha512,
          key,
          concatBytes([u32(1), ascii(`EKMS-${kind}-V2`), Uint8Array.of(0), p, salt, u32(512)]),
        );
  return [okm.slice(0, 32), okm.slice(32)];
}

function refOpen(
  suiteId: number,
  key: Uint8Array,
  nonce: Uint8Array,
  ct: Uint8Array,
  tag: Uint8Array,
  aad: Uint8Array,
) {
  if (isAes(suiteId)) {
    const d = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
    d.setAAD(aad);
    d.setAuthTag(tag);
    return new Uint8Array(Buffer.concat([d.update(ct), d.final()]));
  }
  return xchacha20poly1305(key, nonce, aad).decrypt(concatBytes([ct, tag]));
}

function refTag(suiteId: number, key: Uint8Array, nonce: Uint8Array, aad: Uint8Array): Uint8Array {
  if (isAes(suiteId)) {
    const c = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
    c.setAAD(aad);
    c.final();
    return new Uint8Array(c.getAuthTag());
  }
  return xchacha20poly1305(key, nonce, aad).encrypt(new Uint8Array(0));
}

function refOpenBlob(v: BlobVector) {
  const b = unhex(v.blob);
  const dv = new DataView(b.buffer);
  expect(b[0]).toBe(0xe1);
  const suiteId = dv.getUint16(1);
  const L = b[3]!;
  expect(new TextDecoder().decode(b.subarray(4, 4 + L))).toBe(v.keyId);
  expect(dv.getUint32(4 + L)).toBe(v.keyVersion);
  const salt = b.subarray(8 + L, 40 + L);
  const commitment = b.subarray(40 + L, 72 + L);
  const n = dv.getUint16(72 + L);
  expect(b.length).toBe(74 + L + n + 16);
  const p = b.subarray(0, 8 + L);
  const key = unhex(v.key);
  const [blobKey, expectedCommitment] = refKeys(suiteId, key, salt, 'BLOB', p);
  expect(hex(expectedCommitment)).toBe(hex(commitment));
  const nonce = new Uint8Array(isAes(suiteId) ? 12 : 24);
  const aad = concatBytes([b.subarray(0, 74 + L), refContextEncoding(v.context)]);
  const plaintext = refOpen(
    suiteId,
    blobKey,
    nonce,
    b.subarray(74 + L, 74 + L + n),
    b.subarray(74 + L + n),
    aad,
  );
  return { suiteId, salt, commitment, blobKey, plaintext };
}

function refOpenStream(v: StreamVector) {
  const s = unhex(v.stream);
  const dv = new DataView(s.buffer);
  const version = s[4]!;
  expect(hex(s.subarray(0, 4))).toBe('454b4d53');
  expect([1, 2]).toContain(version);
  expect(version).toBe(v.formatVersion);
  const suiteId = dv.getUint16(5);
  const chunkSize = dv.getUint32(7);
  const messageId = s.subarray(11, 43);
  const L = s[43]!;
  const E = dv.getUint16(44 + L);
  const C = dv.getUint32(46 + L + E);
  expect(hex(s.subarray(50 + L + E, 50 + L + E + C))).toBe(hex(refContextEncoding(v.context)));
  const sha256 = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest());
  // Format 1: commitment then header tag; format 2: the header ends with the commitment.
  const commitAt = 50 + L + E + C;
  const headerLength = commitAt + 32 + (version === 1 ? 16 : 0);
  const header = s.subarray(0, headerLength);
  // P: format 1 the header bytes 0..11; format 2 those ‖ SHA-256(header bytes before the commitment).
  const digest = version === 1 ? sha256(header) : sha256(header.subarray(0, commitAt));
  const p = version === 1 ? s.subarray(0, 11) : concatBytes([s.subarray(0, 11), digest]);
  const dataKey = unhex(v.dataKey);
  const [streamKey, commitment] = refKeys(suiteId, dataKey, messageId, 'STREAM', p);
  expect(hex(header.subarray(commitAt, commitAt + 32))).toBe(hex(commitment));
  const nonceLength = isAes(suiteId) ? 12 : 24;
  if (version === 1) {
    expect(hex(header.subarray(headerLength - 16))).toBe(
      hex(
        refTag(
          suiteId,
          streamKey,
          new Uint8Array(nonceLength).fill(0xff),
          header.subarray(0, headerLength - 16),
        ),
      ),
    );
  }
  const out: Uint8Array[] = [];
  let pos = headerLength;
  for (let i = 0; ; i++) {
    const prefix = s.subarray(pos, pos + 9);
    const type = prefix[0]!;
    expect(dv.getUint32(pos + 1)).toBe(i);
    const length = dv.getUint32(pos + 5);
    const finalOk = version === 1 ? length < chunkSize : length <= chunkSize && (length > 0 || i === 0);
    expect(type === 0 ? length === chunkSize : finalOk).toBe(true);
    const nonce = new Uint8Array(nonceLength);
    new DataView(nonce.buffer).setUint32(nonceLength - 4, i);
    const ct = s.subarray(pos + 9, pos + 9 + length);
    const tag = s.subarray(pos + 9 + length, pos + 25 + length);
    const aad = version === 1 ? concatBytes([digest, prefix]) : prefix;
    out.push(refOpen(suiteId, streamKey, nonce, ct, tag, aad));
    pos += 25 + length;
    if (type === 1) break;
  }
  expect(pos).toBe(s.length);
  return { suiteId, chunkSize, messageId, streamKey, commitment, digest, plaintext: concatBytes(out) };
}

// ---------------------------------------------------------------------------------------------------------
// Generator (EKMS_REGEN_VECTORS=1)
// ---------------------------------------------------------------------------------------------------------

async function streamBytes(v: Omit<StreamVector, 'streamKey' | 'commitment' | 'headerDigest' | 'stream'>) {
  const out: Uint8Array[] = [];
  const plaintext = unhex(v.plaintext);
  for await (const piece of encryptEnvelope([plaintext], {
    formatVersion: v.formatVersion as StreamFormatVersion,
    suite: v.suiteId as SuiteId,
    dataKey: unhex(v.dataKey),
    encryptedDataKey: unhex(v.encryptedDataKey),
    keyId: v.keyId,
    context: v.context,
    chunkSize: v.chunkSize,
    testRandom: fixed(unhex(v.messageId)),
  })) {
    out.push(piece);
  }
  return concatBytes(out);
}

function sealVector(v: BlobVector): Uint8Array {
  return sealBlob(
    {
      suite: v.suiteId as SuiteId,
      keyId: v.keyId,
      keyVersion: v.keyVersion,
      key: unhex(v.key),
      plaintext: unhex(v.plaintext),
      context: v.context,
    },
    { testRandom: fixed(unhex(v.salt)) },
  );
}

async function generate(): Promise<VectorFile> {
  const contexts: ContextVector[] = [
    { name: 'empty', context: {} },
    { name: 'two entries, given out of order', context: { tenant: 'acme', purpose: 'backup' } },
    {
      name: 'UTF-8 byte order, empty value',
      context: { é: '', a: 'x', B: 'yz', '😀': 'smile', '｡': 'halfwidth' },
    },
  ].map((c) => ({ ...c, encoding: hex(encodeContext(c.context)), sha256: hex(contextDigest(c.context)) }));

  const blobs: BlobVector[] = [];
  const streams: StreamVector[] = [];
  // The v1 tags are those the file was first generated with: regenerating reproduces the v1 vectors byte for byte.
  const tags: Record<number, string> = { 1: 'aes', 2: 'xchacha', 3: 'aes-v2', 4: 'xchacha-v2' };
  for (const suiteId of Object.values(SuiteId)) {
    const suite = getSuite(suiteId);
    const tag = tags[suiteId]!;
    const blobInputs = [
      {
        name: `${tag}: empty plaintext, empty context`,
        keyId: 'k',
        keyVersion: 1,
        plaintext: '',
        context: {},
      },
      {
        name: `${tag}: 32-byte data key, two-entry context`,
        keyId: 'key-0123456789abcdef',
        keyVersion: 3,
        plaintext: hex(detBytes('vector data key', 32)),
        context: { tenant: 'acme', purpose: 'backup' },
      },
    ];
    for (const [i, b] of blobInputs.entries()) {
      const v: BlobVector = {
        ...b,
        suite: suite.name,
        suiteId,
        key: hex(detBytes(`vector kek ${i}`, 32)),
        salt: hex(detBytes(`vector salt ${tag} ${i}`, 32)),
        blobKey: '',
        commitment: '',
        blob: '',
      };
      v.blob = hex(sealVector(v));
      const ref = refOpenBlob(v);
      v.blobKey = hex(ref.blobKey);
      v.commitment = hex(ref.commitment);
      blobs.push(v);
    }
    // Format 1 vectors keep the names and message ids they were first generated with; format 2's are marked "f2".
    const streamInputs = [1, 2].flatMap((formatVersion) => {
      const t = formatVersion === 1 ? tag : `f2 ${tag}`;
      return [
        { name: `${t}: empty input`, plaintext: '', chunkSize: 16 },
        {
          name: `${t}: 40 bytes in 16-byte chunks (2 regular + 8-byte final)`,
          plaintext: hex(detBytes('sv40', 40)),
          chunkSize: 16,
        },
        {
          name:
            formatVersion === 1
              ? `${t}: 32 bytes in 16-byte chunks (2 regular + empty final)`
              : `${t}: 32 bytes in 16-byte chunks (1 regular + full final)`,
          plaintext: hex(detBytes('sv32', 32)),
          chunkSize: 16,
        },
      ].map((x, i) => ({ ...x, formatVersion, i, t }));
    });
    for (const { i, t, ...s } of streamInputs) {
      const base = {
        ...s,
        suite: suite.name,
        suiteId,
        dataKey: hex(detBytes(`vector stream data key ${i}`, 32)),
        encryptedDataKey: hex(detBytes(`vector edk ${i}`, 24)),
        keyId: 'key-0123456789abcdef',
        context: i === 0 ? {} : { tenant: 'acme' },
        messageId: hex(detBytes(`vector message id ${t} ${i}`, 32)),
      };
      const stream = await streamBytes(base);
      const v: StreamVector = {
        ...base,
        streamKey: '',
        commitment: '',
        headerDigest: '',
        stream: hex(stream),
      };
      const ref = refOpenStream(v);
      v.streamKey = hex(ref.streamKey);
      v.commitment = hex(ref.commitment);
      v.headerDigest = hex(ref.digest);
      streams.push(v);
    }
  }
  return {
    description:
      'Test vectors of the ekms ciphertext blob and envelope stream formats (docs/ciphertext-format.md). Inputs are ' +
      'fixed; salts and message ids are injected through the test-only testRandom parameter. Intermediate values ' +
      '(blobKey, streamKey, commitment, headerDigest) are given for other implementations.',
    generatedBy: 'EKMS_REGEN_VECTORS=1 npx vitest run test/crypto/vectors.test.ts',
    contexts,
    blobs,
    streams,
  };
}

describe('crypto test vectors', () => {
  it.skipIf(!REGEN)(
    'GENERATOR (EKMS_REGEN_VECTORS=1): regenerates test/vectors/crypto-vectors.json',
    async () => {
      const file = await generate();
      writeFileSync(VECTORS_PATH, `${JSON.stringify(file, null, 2)}\n`);
    },
  );

  const load = (): VectorFile => {
    if (!existsSync(VECTORS_PATH)) {
      throw new Error(
        `${VECTORS_PATH} is missing: run EKMS_REGEN_VECTORS=1 npx vitest run test/crypto/vectors.test.ts`,
      );
    }
    return JSON.parse(readFileSync(VECTORS_PATH, 'utf8')) as VectorFile;
  };

  it('holds vectors for every suite', () => {
    const file = load();
    expect(new Set(file.blobs.map((b) => b.suiteId))).toEqual(new Set([1, 2, 3, 4]));
    expect(new Set(file.streams.map((s) => `${s.formatVersion}/${s.suiteId}`))).toEqual(
      new Set([1, 2].flatMap((f) => [1, 2, 3, 4].map((id) => `${f}/${id}`))),
    );
    expect(file.generatedBy).toContain('EKMS_REGEN_VECTORS=1');
  });

  it('context vectors: encoding and SHA-256 digest match', () => {
    for (const v of load().contexts) {
      expect(hex(encodeContext(v.context)), v.name).toBe(v.encoding);
      expect(hex(refContextEncoding(v.context)), v.name).toBe(v.encoding);
      expect(hex(contextDigest(v.context)), v.name).toBe(v.sha256);
    }
  });

  it('blob vectors: open, re-seal identically, and open with the independent reader', () => {
    for (const v of load().blobs) {
      const blob = unhex(v.blob);
      const parsed = parseBlob(blob);
      expect(parsed.suite.name, v.name).toBe(v.suite);
      expect(hex(openBlob(parsed, unhex(v.key), v.context)), v.name).toBe(v.plaintext);
      expect(hex(sealVector(v)), v.name).toBe(v.blob);
      const ref = refOpenBlob(v);
      expect(hex(ref.plaintext), v.name).toBe(v.plaintext);
      expect(hex(ref.blobKey), v.name).toBe(v.blobKey);
      expect(hex(ref.commitment), v.name).toBe(v.commitment);
    }
  });

  it('stream vectors: decrypt, re-encrypt identically, and decrypt with the independent reader', async () => {
    for (const v of load().streams) {
      const { plaintext, error } = await decryptAll(unhex(v.stream), {
        resolveDataKey: (h) => {
          expect(hex(h.encryptedDataKey)).toBe(v.encryptedDataKey);
          return unhex(v.dataKey);
        },
        context: v.context,
      });
      expect(error, v.name).toBeUndefined();
      expect(hex(plaintext), v.name).toBe(v.plaintext);
      expect(hex(await streamBytes(v)), v.name).toBe(v.stream);
      const ref = refOpenStream(v);
      expect(hex(ref.plaintext), v.name).toBe(v.plaintext);
      expect(ref.chunkSize, v.name).toBe(v.chunkSize);
      expect(hex(ref.streamKey), v.name).toBe(v.streamKey);
      expect(hex(ref.commitment), v.name).toBe(v.commitment);
      expect(hex(ref.digest), v.name).toBe(v.headerDigest);
    }
  });

  it('stream vectors hold when the pooled memory the streams allocate from is dirty', async () => {
    // The streams take nonces, AADs and headers from Node's pool (Buffer.allocUnsafe), whose bytes are whatever was
    // there before: every byte must be written before use (the nonces' fill, the header fields). Hand out 0xa5
    // everywhere and the output must not change.
    const real = Buffer.allocUnsafe.bind(Buffer);
    const dirty = vi.spyOn(Buffer, 'allocUnsafe').mockImplementation((n: number) => real(n).fill(0xa5));
    try {
      for (const v of load().streams) {
        expect(hex(await streamBytes(v)), v.name).toBe(v.stream);
        const { plaintext, error } = await decryptAll(unhex(v.stream), {
          resolveDataKey: () => unhex(v.dataKey),
          context: v.context,
        });
        expect(error, v.name).toBeUndefined();
        expect(hex(plaintext), v.name).toBe(v.plaintext);
      }
      expect(dirty).toHaveBeenCalled();
    } finally {
      dirty.mockRestore();
    }
  });
});
