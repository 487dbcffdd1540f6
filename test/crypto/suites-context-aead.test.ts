/**
 * Suite registry (shared/suites.ts), encryption context (shared/encryption-context.ts) and the AEAD interface
 * (enclave/crypto/aead.ts): named negative tests per check, asserting the code, then the message.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { getAead } from '../../enclave/crypto/aead.js';
import { CRYPTO_ERROR_CODES, CryptoError } from '../../shared/crypto-errors.js';
import {
  contextDigest,
  contextObject,
  contextsEqual,
  decodeContext,
  encodeContext,
  MAX_CONTEXT_ENCODING_BYTES,
  normalizeContext,
} from '../../shared/encryption-context.js';
import { registeredErrorCodes } from '../../shared/errors.js';
import { LIMITS } from '../../shared/limits.js';
import {
  DEFAULT_SUITE_ID,
  getSuite,
  getSuiteByName,
  isSuiteId,
  SUITES,
  SuiteId,
  SuiteName,
} from '../../shared/suites.js';
import { detBytes, expectCode } from './helpers.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('crypto error codes', () => {
  it('are registered with the shared registry', () => {
    for (const [code, spec] of Object.entries(CRYPTO_ERROR_CODES)) {
      expect(registeredErrorCodes().get(code)).toBe(spec);
    }
  });

  it('CryptoError carries the code and the table’s retriable flag', () => {
    const err = new CryptoError('DECRYPT_FAILED', 'x');
    expect(err.code).toBe('DECRYPT_FAILED');
    expect(err.retriable).toBe(false);
    expect(err.name).toBe('CryptoError');
  });
});

describe('suite registry', () => {
  it('spells out every parameter in each name and keys each suite by its id', () => {
    expect(getSuite(0x0001).name).toBe('AES-256-GCM/HKDF-SHA-384/COMMIT-v1');
    expect(getSuite(0x0002).name).toBe('XCHACHA20-POLY1305/HKDF-SHA-384/COMMIT-v1');
    expect(getSuite(0x0003).name).toBe('AES-256-GCM/KDF-CTR-HMAC-SHA-512/COMMIT-v2');
    expect(getSuite(0x0004).name).toBe('XCHACHA20-POLY1305/KDF-CTR-HMAC-SHA-512/COMMIT-v2');
    expect([1, 2, 3, 4].map((id) => getSuite(id).kdf)).toEqual([
      'hkdf-sha384',
      'hkdf-sha384',
      'kdf-ctr-hmac-sha512',
      'kdf-ctr-hmac-sha512',
    ]);
    for (const [key, id] of Object.entries(SuiteId)) {
      expect(SUITES[id].id).toBe(id);
      expect(SUITES[id].name).toBe(SuiteName[key as keyof typeof SuiteName]);
      expect(getSuiteByName(SUITES[id].name)).toBe(SUITES[id]);
    }
    expect(DEFAULT_SUITE_ID).toBe(SuiteId.Aes256GcmKdfCtrHmacSha512CommitV2);
    expect(Object.isFrozen(SUITES[1])).toBe(true);
  });

  it('unknown suite id → SUITE_UNKNOWN', () => {
    for (const id of [0, 5, 0xffff, -1, 1.5, Number.NaN]) {
      expectCode(() => getSuite(id), 'SUITE_UNKNOWN', /unknown suite id/);
      expect(isSuiteId(id)).toBe(false);
    }
    expectCode(() => getSuite('1' as unknown as number), 'SUITE_UNKNOWN');
    expectCode(() => getSuite('toString' as unknown as number), 'SUITE_UNKNOWN');
  });

  it('unknown suite name → SUITE_UNKNOWN', () => {
    expectCode(() => getSuiteByName('AES-256-GCM'), 'SUITE_UNKNOWN', /unknown suite name/);
  });
});

describe('encryption context', () => {
  it('encodes canonically: count, then length-prefixed pairs sorted by UTF-8 key bytes', () => {
    expect(hex(encodeContext({}))).toBe('0000');
    // 'B' (0x42) < 'a' (0x61) < 'é' (0xc3 0xa9): byte order, not locale order.
    const enc = encodeContext({ é: '', a: 'x', B: 'yz' });
    expect(hex(enc)).toBe(
      `0003${'0001' + '42' + '0002' + '797a'}${'0001' + '61' + '0001' + '78'}${'0002' + 'c3a9' + '0000'}`,
    );
    expect(Object.keys(normalizeContext({ é: '', a: 'x', B: 'yz' }))).toEqual(['B', 'a', 'é']);
  });

  it('orders by UTF-8 bytes even where UTF-16 order differs (astral vs BMP-high)', () => {
    // U+FF61 is 0xef 0xbd 0xa1 in UTF-8; U+1F600 is 0xf0 …; in UTF-16 the surrogate 0xd83d sorts first.
    expect(Object.keys(normalizeContext({ '😀': '1', '｡': '2' }))).toEqual(['｡', '😀']);
  });

  it('accepts objects, Maps and pairs alike, and decodes what it encodes', () => {
    const obj = { tenant: 'acme', 'k=v': 'a\u0000b', empty: '' };
    const enc = encodeContext(obj);
    expect(encodeContext(new Map(Object.entries(obj)))).toEqual(enc);
    expect(encodeContext(Object.entries(obj) as [string, string][])).toEqual(enc);
    const decoded = decodeContext(enc);
    expect({ ...decoded }).toEqual(obj);
    expect(Object.getPrototypeOf(decoded)).toBe(null);
    expect(Object.isFrozen(decoded)).toBe(true);
    expect(encodeContext(decoded)).toEqual(enc);
  });

  it('keeps __proto__ as an ordinary key', () => {
    const ctx = JSON.parse('{"__proto__":"x"}') as Record<string, string>;
    const decoded = decodeContext(encodeContext(ctx));
    expect(Object.keys(decoded)).toEqual(['__proto__']);
    expect(Object.getOwnPropertyDescriptor(decoded, '__proto__')?.value).toBe('x');
  });

  it('digest is SHA-256 of the canonical encoding', () => {
    const ctx = { b: '2', a: '1' };
    expect(hex(contextDigest(ctx))).toBe(createHash('sha256').update(encodeContext(ctx)).digest('hex'));
    expect(contextDigest(ctx)).toEqual(contextDigest({ a: '1', b: '2' }));
    expect(
      contextsEqual(
        ctx,
        new Map([
          ['a', '1'],
          ['b', '2'],
        ]),
      ),
    ).toBe(true);
    expect(contextsEqual(ctx, { a: '1' })).toBe(false);
  });

  it('accepts the limits exactly', () => {
    const big: Record<string, string> = {};
    for (let i = 0; i < LIMITS.maxContextEntries; i++) {
      big[`${String(i).padStart(2, '0')}${'k'.repeat(LIMITS.maxContextStringBytes - 2)}`] = 'v'.repeat(
        LIMITS.maxContextStringBytes,
      );
    }
    const enc = encodeContext(big);
    expect(enc.length).toBe(MAX_CONTEXT_ENCODING_BYTES);
    // Big-endian u16 counts and lengths, high bytes included: 64 entries, then a 1024-byte key (0x0400).
    expect([...enc.subarray(0, 4)]).toEqual([0x00, 0x40, 0x04, 0x00]);
    expect([...enc.subarray(4 + 1024, 4 + 1024 + 2)]).toEqual([0x04, 0x00]);
    const decoded = decodeContext(enc);
    expect(Object.keys(decoded)).toHaveLength(LIMITS.maxContextEntries);
    expect(encodeContext(decoded)).toEqual(enc);
  });

  it('too many entries → CONTEXT_INVALID', () => {
    const ctx = Object.fromEntries(
      Array.from({ length: LIMITS.maxContextEntries + 1 }, (_, i) => [`k${i}`, 'v']),
    );
    expectCode(() => encodeContext(ctx), 'CONTEXT_INVALID', /65 entries exceed the limit of 64/);
  });

  it('key or value over the byte limit (counted in UTF-8) → CONTEXT_INVALID', () => {
    expectCode(
      () => encodeContext({ ['k'.repeat(1025)]: 'v' }),
      'CONTEXT_INVALID',
      /key of entry 0 exceeds 1024/,
    );
    // 513 × 'é' is only 513 UTF-16 units but 1026 UTF-8 bytes.
    expectCode(
      () => encodeContext({ k: 'é'.repeat(513) }),
      'CONTEXT_INVALID',
      /value of entry 0 exceeds 1024/,
    );
    expect(encodeContext({ k: 'é'.repeat(512) }).length).toBe(2 + 2 + 1 + 2 + 1024);
  });

  it('empty key → CONTEXT_INVALID', () => {
    expectCode(() => encodeContext({ '': 'v' }), 'CONTEXT_INVALID', /empty/);
  });

  it('reserved ekms: prefix (any ASCII case) → CONTEXT_INVALID unless the service allows it', () => {
    for (const key of ['ekms:tenant', 'EKMS:x', 'eKmS:']) {
      expectCode(() => encodeContext({ [key]: 'v' }), 'CONTEXT_INVALID', /reserved prefix "ekms:"/);
    }
    expect(encodeContext({ 'ekms:x': 'v' }, { allowReservedPrefix: true }).length).toBe(2 + 2 + 6 + 2 + 1);
    expect(encodeContext({ ekms: 'v', 'x-ekms:': 'v' }).length).toBeGreaterThan(2);
  });

  it('ASCII and non-ASCII strings encode to their UTF-8 bytes at the limits; the reserved prefix holds on both paths', () => {
    const max = 'k'.repeat(LIMITS.maxContextStringBytes);
    expect(encodeContext({ [max]: '\u0000\u007f' }).length).toBe(2 + 2 + max.length + 2 + 2);
    expectCode(() => encodeContext({ [`${max}k`]: '' }), 'CONTEXT_INVALID', /exceeds 1024 bytes/);
    // 0x80 is the first non-ASCII code unit: two UTF-8 bytes.
    expect(Buffer.from(encodeContext({ a: '\u0080' })).toString('hex')).toBe('00010001610002c280');
    expectCode(() => encodeContext({ a: 'x\ud800' }), 'CONTEXT_INVALID', /lone surrogate/);
    const normalized = normalizeContext({ tenant: 'acme', é: 'ü' });
    expect(encodeContext(normalized)).toEqual(encodeContext({ é: 'ü', tenant: 'acme' }));
    const service = normalizeContext({ 'ekms:x': 'v' }, { allowReservedPrefix: true });
    expectCode(() => encodeContext(service), 'CONTEXT_INVALID', /reserved prefix "ekms:"/);
  });

  it('duplicate keys → CONTEXT_INVALID', () => {
    expectCode(
      () =>
        encodeContext([
          ['a', '1'],
          ['a', '2'],
        ]),
      'CONTEXT_INVALID',
      /duplicate key "a"/,
    );
  });

  it('lone surrogates (not UTF-8) → CONTEXT_INVALID', () => {
    expectCode(() => encodeContext({ k: 'a\ud800' }), 'CONTEXT_INVALID', /lone surrogate/);
    expectCode(() => encodeContext({ '\udc00': 'v' }), 'CONTEXT_INVALID', /lone surrogate/);
  });

  it('non-string keys, values or shapes → CONTEXT_INVALID', () => {
    expectCode(
      () => encodeContext({ k: 1 } as unknown as Record<string, string>),
      'CONTEXT_INVALID',
      /not a string/,
    );
    expectCode(() => encodeContext(null as unknown as Record<string, string>), 'CONTEXT_INVALID', /object/);
    expectCode(() => encodeContext('a=b' as unknown as Record<string, string>), 'CONTEXT_INVALID', /object/);
    expectCode(
      () => encodeContext(new Date() as unknown as Record<string, string>),
      'CONTEXT_INVALID',
      /plain/,
    );
    expectCode(() => encodeContext([['a']] as unknown as [string, string][]), 'CONTEXT_INVALID', /pair/);
    expectCode(
      () => encodeContext({ [Symbol('s')]: 'v' } as unknown as Record<string, string>),
      'CONTEXT_INVALID',
      /symbol/,
    );
  });

  it('decode: truncated, trailing, unsorted, duplicate, over-limit or non-UTF-8 encodings → CONTEXT_INVALID', () => {
    const enc = encodeContext({ a: '1', b: '2' });
    for (let n = 0; n < enc.length; n++) {
      expectCode(() => decodeContext(enc.subarray(0, n)), 'CONTEXT_INVALID', /ends early/);
    }
    expectCode(() => decodeContext(Uint8Array.from([...enc, 0])), 'CONTEXT_INVALID', /1 byte\(s\) follow/);
    const swapped = Uint8Array.from(Buffer.from('0002' + '000162' + '000132' + '000161' + '000131', 'hex'));
    expectCode(() => decodeContext(swapped), 'CONTEXT_INVALID', /canonical order/);
    const dup = Uint8Array.from(Buffer.from('0002' + '000161' + '000131' + '000161' + '000132', 'hex'));
    expectCode(() => decodeContext(dup), 'CONTEXT_INVALID', /duplicates/);
    expectCode(() => decodeContext(Uint8Array.from([0, 65])), 'CONTEXT_INVALID', /65 entries/);
    expectCode(
      () => decodeContext(Uint8Array.from(Buffer.from('0001000180000131', 'hex'))),
      'CONTEXT_INVALID',
      /UTF-8/,
    );
    expectCode(
      () => decodeContext(Uint8Array.from(Buffer.from('00010401', 'hex'))),
      'CONTEXT_INVALID',
      /exceeds 1024/,
    );
    expectCode(
      () => decodeContext(Uint8Array.from(Buffer.from('000100000000', 'hex'))),
      'CONTEXT_INVALID',
      /empty/,
    );
    const reserved = Uint8Array.from(
      Buffer.from(`00010005${Buffer.from('ekms:').toString('hex')}0000`, 'hex'),
    );
    expectCode(() => decodeContext(reserved), 'CONTEXT_INVALID', /reserved/);
    expectCode(
      () => decodeContext(new Uint8Array(MAX_CONTEXT_ENCODING_BYTES + 1)),
      'CONTEXT_INVALID',
      /exceeds/,
    );
  });

  it('decode remembers the last encoding: same bytes, same frozen object; nothing else carries over', () => {
    const enc = encodeContext({ tenant: 'acme', region: 'eu' });
    const first = decodeContext(enc);
    expect(decodeContext(Uint8Array.from(enc))).toBe(first);
    // What is remembered is a private copy: rewriting the caller's array in place is a new encoding.
    const buf = encodeContext({ tenant: 'acmx', region: 'eu' });
    const before = decodeContext(buf);
    buf.set(encodeContext({ tenant: 'acmf', region: 'eu' }));
    const after = decodeContext(buf);
    expect(after).not.toBe(before);
    expect({ ...after }).toEqual({ region: 'eu', tenant: 'acmf' });
    // A failed decode leaves the remembered one in place.
    const again = decodeContext(enc);
    expectCode(() => decodeContext(enc.subarray(0, enc.length - 1)), 'CONTEXT_INVALID', /ends early/);
    expect(decodeContext(enc)).toBe(again);
    // A decode that allowed the reserved prefix neither reads nor leaves anything for one that does not.
    const reserved = encodeContext({ 'ekms:key': 'k1' }, { allowReservedPrefix: true });
    expect({ ...decodeContext(reserved, { allowReservedPrefix: true }) }).toEqual({ 'ekms:key': 'k1' });
    expectCode(() => decodeContext(reserved), 'CONTEXT_INVALID', /reserved/);
    const plainOnce = decodeContext(enc);
    expect(decodeContext(enc, { allowReservedPrefix: true })).not.toBe(plainOnce);
    // Only `true` allows the prefix (a JavaScript caller's 1 or 'true' does not), so nothing else can fill the memo.
    for (const loose of [1, 'true', {}]) {
      const options = { allowReservedPrefix: loose as unknown as boolean };
      expectCode(() => decodeContext(reserved, options), 'CONTEXT_INVALID', /reserved/);
      expectCode(() => encodeContext({ 'ekms:key': 'k1' }, options), 'CONTEXT_INVALID', /reserved/);
    }
    expectCode(() => decodeContext(reserved), 'CONTEXT_INVALID', /reserved/);
    // Large encodings are not kept (the memory it holds stays bounded): equal results, not the same object.
    const big = encodeContext({ k: 'v'.repeat(1024) });
    expect(big.length).toBeGreaterThan(1024);
    const bigFirst = decodeContext(big);
    const bigSecond = decodeContext(big);
    expect(bigSecond).not.toBe(bigFirst);
    expect({ ...bigSecond }).toEqual({ ...bigFirst });
  });

  it('a normalized context is reused as validated, and only under the option it was validated with', () => {
    const plain = { b: '2', a: '1' };
    const normalized = normalizeContext(plain);
    // Invisible to enumeration, JSON and spreading: it is still just the map.
    expect(Object.keys(normalized)).toEqual(['a', 'b']);
    expect(JSON.stringify(normalized)).toBe('{"a":"1","b":"2"}');
    expect({ ...normalized }).toEqual({ a: '1', b: '2' });
    expect(encodeContext(normalized)).toEqual(encodeContext(plain));
    expect(contextDigest(normalized)).toEqual(contextDigest(plain));
    expect(normalizeContext(normalized)).toEqual(normalized);
    // Validated with the reserved prefix allowed: refused where the option is not given, accepted where it is.
    const service = normalizeContext({ 'ekms:purpose': 'x' }, { allowReservedPrefix: true });
    expectCode(() => encodeContext(service), 'CONTEXT_INVALID', /reserved/);
    expect(encodeContext(service, { allowReservedPrefix: true })).toEqual(
      encodeContext({ 'ekms:purpose': 'x' }, { allowReservedPrefix: true }),
    );
    // Other symbol keys are still refused.
    expectCode(() => encodeContext({ a: '1', [Symbol('x')]: 'y' } as never), 'CONTEXT_INVALID', /symbol/);
  });

  it('what a normalized context remembers cannot be inherited, moved, forged or read', () => {
    const n = normalizeContext({ tenant: 'blue' });
    // Inherited: an object whose prototype is a normalized context is not a plain object.
    const child = Object.freeze(
      Object.defineProperties(Object.create(n), {
        'ekms:role': { value: 'admin', enumerable: true },
        tenant: { value: 'red', enumerable: true },
      }),
    );
    expectCode(() => encodeContext(child), 'CONTEXT_INVALID', /plain object/);
    expectCode(() => contextObject(child), 'CONTEXT_INVALID', /plain object/);
    // Moved: the record under the symbol, put on another frozen object, does not vouch for that object's entries.
    const [sym] = Object.getOwnPropertySymbols(n);
    const record = (n as unknown as Record<symbol, unknown>)[sym!];
    const moved = Object.freeze(Object.assign(Object.create(null), { 'ekms:x': 'y' }, { [sym!]: record }));
    expectCode(() => encodeContext(moved), 'CONTEXT_INVALID', /reserved/);
    const other = Object.freeze(Object.assign(Object.create(null), { tenant: 'red' }, { [sym!]: record }));
    expect(encodeContext(other)).toEqual(encodeContext({ tenant: 'red' }));
    // Forged: a look-alike record is not one.
    const forged = Object.freeze(
      Object.assign(
        Object.create(null),
        { 'ekms:x': 'y' },
        { [sym!]: { entries: [], reservedAllowed: true } },
      ),
    );
    expectCode(() => encodeContext(forged), 'CONTEXT_INVALID', /reserved/);
    // Read: the record exposes nothing to change.
    expect(Object.isFrozen(record)).toBe(true);
    expect(Reflect.ownKeys(record as object)).toEqual([]);
    // An unfrozen copy of a normalized context is validated from scratch.
    const thawed = Object.assign(Object.create(null), { 'ekms:x': 'y' });
    Object.defineProperty(thawed, sym!, { value: record });
    expectCode(() => encodeContext(thawed), 'CONTEXT_INVALID', /reserved/);
  });

  it('contextObject: a plain object in canonical order, "__proto__" as an own key, the same rules', () => {
    const o = contextObject(
      new Map([
        ['b', '2'],
        ['a', '1'],
        ['__proto__', 'x'],
      ]),
    );
    expect(Object.getPrototypeOf(o)).toBe(Object.prototype);
    expect(Object.keys(o)).toEqual(['__proto__', 'a', 'b']);
    expect(Object.getOwnPropertyDescriptor(o, '__proto__')?.value).toBe('x');
    expect(Object.isFrozen(o)).toBe(false);
    expectCode(() => contextObject({ 'ekms:x': '1' }), 'CONTEXT_INVALID', /reserved/);
    expectCode(
      () =>
        contextObject([
          ['a', '1'],
          ['a', '2'],
        ]),
      'CONTEXT_INVALID',
      /duplicate/,
    );
  });

  it('a decoded context does not follow later changes to the bytes it was decoded from', () => {
    const bytes = encodeContext({ tenant: 'blue', app: 'x' });
    const original = bytes.slice();
    const decoded = decodeContext(bytes);
    bytes.fill(0x41);
    expect(encodeContext(decoded)).toEqual(original);
    expect({ ...decoded }).toEqual({ app: 'x', tenant: 'blue' });
  });
});

describe.each(Object.values(SUITES))('AEAD $name', (suite) => {
  const aead = getAead(suite.id);
  const key = detBytes('aead key', 32);
  const nonce = detBytes('aead nonce', suite.nonceBytes);
  const aad = detBytes('aad', 20);

  it('round-trips, with ciphertext ‖ 16-byte tag', () => {
    for (const n of [0, 1, 64, 1000]) {
      const pt = detBytes(`p${n}`, n);
      const sealed = aead.seal(key, nonce, pt, aad);
      expect(sealed.length).toBe(n + 16);
      expect(aead.open(key, nonce, sealed, aad)).toEqual(pt);
    }
  });

  it('tag, ciphertext, AAD, nonce or key changed → DECRYPT_FAILED', () => {
    const sealed = aead.seal(key, nonce, detBytes('p', 40), aad);
    const flip = (b: Uint8Array, i: number) => {
      const c = b.slice();
      c[i]! ^= 1;
      return c;
    };
    expectCode(() => aead.open(key, nonce, flip(sealed, 45), aad), 'DECRYPT_FAILED', /authentication failed/);
    expectCode(() => aead.open(key, nonce, flip(sealed, 0), aad), 'DECRYPT_FAILED');
    expectCode(() => aead.open(key, nonce, sealed, flip(aad, 3)), 'DECRYPT_FAILED');
    expectCode(() => aead.open(key, flip(nonce, 0), sealed, aad), 'DECRYPT_FAILED');
    expectCode(() => aead.open(flip(key, 31), nonce, sealed, aad), 'DECRYPT_FAILED');
  });

  it('shorter than a tag → CIPHERTEXT_TRUNCATED', () => {
    expectCode(() => aead.open(key, nonce, new Uint8Array(15), aad), 'CIPHERTEXT_TRUNCATED', /16-byte tag/);
  });

  it('wrong key length → KEY_INVALID; wrong nonce length → CRYPTO_PARAMETER_INVALID', () => {
    expectCode(
      () => aead.seal(new Uint8Array(16), nonce, new Uint8Array(1), aad),
      'KEY_INVALID',
      /32-byte key/,
    );
    expectCode(() => aead.open(new Uint8Array(33), nonce, new Uint8Array(16), aad), 'KEY_INVALID');
    expectCode(
      () => aead.seal(key, new Uint8Array(8), new Uint8Array(1), aad),
      'CRYPTO_PARAMETER_INVALID',
      /nonce/,
    );
  });
});

describe('AEAD known answers', () => {
  it('AES-256-GCM matches NIST GCM test case 14 (zero key, zero IV, one zero block)', () => {
    // McGrew & Viega, "The Galois/Counter Mode of Operation", test case 14.
    const sealed = getAead(1).seal(
      new Uint8Array(32),
      new Uint8Array(12),
      new Uint8Array(16),
      new Uint8Array(0),
    );
    expect(hex(sealed)).toBe('cea7403d4d606b6e074ec5d3baf39d18' + 'd0d1c8a799996bf0265b98b5d48ab919');
  });

  it('XChaCha20-Poly1305 matches draft-irtf-cfrg-xchacha-03 §A.3.1', () => {
    const key = Uint8Array.from(
      Buffer.from('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f', 'hex'),
    );
    const nonce = Uint8Array.from(Buffer.from('404142434445464748494a4b4c4d4e4f5051525354555657', 'hex'));
    const aad = Uint8Array.from(Buffer.from('50515253c0c1c2c3c4c5c6c7', 'hex'));
    const pt = new TextEncoder().encode(
      "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
    );
    const sealed = getAead(2).seal(key, nonce, pt, aad);
    expect(hex(sealed.subarray(0, 16))).toBe('bd6d179d3e83d43b9576579493c0e939');
    expect(hex(sealed.subarray(sealed.length - 16))).toBe('c0875924c1c7987947deafd8780acf49');
  });
});
