/**
 * The key service's wire handlers (enclave/kms/operations.ts, params.ts, authorizer.ts; docs/key-service.md §4–§9),
 * called in-process over a Keystore on in-memory storage with an injected clock: every operation's round trip and
 * result shape, the encryption context, key ids and aliases, ciphertext tampering by field, rotation and the
 * deletion window as clients see them, parameter checks, paging, the authorisation hook (what it is asked, and
 * that a denial changes nothing), and the wiping of secrets.
 *
 * The AEAD module is wrapped (pass-through) so that the tests hold the plaintexts given to `seal` and returned by
 * `open`, and can check that the ones the handlers own are zeroed.
 */
import { createHash } from 'node:crypto';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { KeyRecord } from '../../enclave/keystore/key-record.js';
import { Keystore } from '../../enclave/keystore/keystore.js';
import {
  type AuthorizationRequest,
  type Authorizer,
  adminOnly,
  DEFAULT_ADMIN,
  KmsAction,
  type Principal,
} from '../../enclave/kms/authorizer.js';
import { KMS_OPERATIONS, type KmsContext } from '../../enclave/kms/operations.js';
import { EkmsError } from '../../shared/errors.js';
import { KmsError } from '../../shared/kms-errors.js';
import { LIMITS } from '../../shared/limits.js';
import type { Params } from '../../shared/messages.js';
import { SuiteName } from '../../shared/suites.js';
import { MemoryStorage } from '../helpers/memory-storage.js';

const sealedInputs = vi.hoisted(() => [] as Uint8Array[]);
const openedOutputs = vi.hoisted(() => [] as Uint8Array[]);

vi.mock('../../enclave/crypto/aead.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../enclave/crypto/aead.js')>();
  return {
    ...actual,
    getAead: (id: number) => {
      const aead = actual.getAead(id);
      return {
        suite: aead.suite,
        seal: (...args: Parameters<typeof aead.seal>) => {
          sealedInputs.push(args[2]);
          return aead.seal(...args);
        },
        open: (...args: Parameters<typeof aead.open>) => {
          const plaintext = aead.open(...args);
          openedOutputs.push(plaintext);
          return plaintext;
        },
      };
    },
  };
});

const DAY = 86_400_000;
const T0 = Date.UTC(2030, 5, 1);
const ROOT = new Uint8Array(createHash('sha256').update('kms operations test root').digest());
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const isZero = (b: Uint8Array): boolean => b.every((x) => x === 0);
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Awaits `p`, asserts it rejects with an EkmsError of `code` (code first, then the message). */
async function rejects(p: Promise<unknown> | (() => Promise<unknown>), code: string, message?: RegExp) {
  let thrown: unknown;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    thrown = err;
  }
  expect(thrown, `expected ${code}`).toBeInstanceOf(EkmsError);
  const err = thrown as EkmsError;
  expect(err.code).toBe(code);
  if (message) expect(err.message).toMatch(message);
  return err;
}

/** Records every request; denies those `deny` selects. */
class RecordingAuthorizer implements Authorizer {
  readonly requests: AuthorizationRequest[] = [];
  deny: (r: AuthorizationRequest) => boolean = () => false;
  authorize(request: AuthorizationRequest): void {
    this.requests.push(request);
    if (this.deny(request)) throw new KmsError('ACCESS_DENIED', `test denies ${request.action}`);
  }
  /** The requests, reduced to what a policy decides on. */
  seen() {
    return this.requests.map((r) => ({
      action: r.action,
      ...(r.keyId === undefined ? {} : { keyId: r.keyId }),
      ...(r.encryptionContext === undefined ? {} : { context: { ...r.encryptionContext } }),
    }));
  }
}

let storage: MemoryStorage;
let clock: { now: number };
let keystore: Keystore;
let authz: RecordingAuthorizer;
let ctx: KmsContext;

async function call(op: string, params: Params, context: KmsContext = ctx): Promise<Record<string, unknown>> {
  const handler = KMS_OPERATIONS[op];
  if (handler === undefined) throw new Error(`no operation ${op}`);
  return (await handler(params, context)) as Record<string, unknown>;
}

/** createKey, returning the key id. */
async function newKey(params: Params = {}): Promise<string> {
  const r = await call('createKey', params);
  return (r['keyMetadata'] as { keyId: string }).keyId;
}

async function describe_(keyId: string) {
  return (await call('describeKey', { keyId }))['keyMetadata'] as Record<string, unknown>;
}

async function encrypt(keyId: string, plaintext: Uint8Array, encryptionContext?: Record<string, string>) {
  const r = await call('encrypt', {
    keyId,
    plaintext: new Uint8Array(plaintext),
    ...(encryptionContext === undefined ? {} : { encryptionContext }),
  });
  return r['ciphertextBlob'] as Uint8Array;
}

/** Key id bytes of a blob start at offset 4 (docs/ciphertext-format.md §3). */
function blobFields(blob: Uint8Array) {
  const L = blob[3]!;
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  return { L, keyId: String.fromCharCode(...blob.subarray(4, 4 + L)), version: view.getUint32(4 + L) };
}
function withVersion(blob: Uint8Array, version: number): Uint8Array {
  const out = new Uint8Array(blob);
  new DataView(out.buffer).setUint32(4 + out[3]!, version);
  return out;
}
function flip(blob: Uint8Array, offset: number): Uint8Array {
  const out = new Uint8Array(blob);
  const i = offset < 0 ? out.length + offset : offset;
  out[i] = out[i]! ^ 0x01;
  return out;
}

/** Everything a denial must leave alone. */
async function snapshot() {
  const keys = keystore.list();
  const records: Record<string, unknown> = {};
  for (const k of keys) {
    const r = await keystore.get(k.id);
    records[k.id] = {
      ...r,
      versions: r.versions.map((v) => ({ ...v, material: v.material && hex(v.material) })),
    };
  }
  return { keys, aliases: keystore.aliases(), records, puts: storage.counts.put };
}

beforeEach(async () => {
  storage = new MemoryStorage();
  clock = { now: T0 };
  keystore = await Keystore.open({ storage, rootKey: new Uint8Array(ROOT), now: () => clock.now });
  authz = new RecordingAuthorizer();
  ctx = { keystore, authorizer: authz, principal: DEFAULT_ADMIN };
  sealedInputs.length = 0;
  openedOutputs.length = 0;
});

// ------------------------------------------------------------------------------------------------ round trips

describe('key management round trips', () => {
  it('createKey: metadata shape and defaults; never key material', async () => {
    const r = await call('createKey', {});
    expect(Object.keys(r)).toEqual(['keyMetadata']);
    const m = r['keyMetadata'] as Record<string, unknown>;
    expect(m).toEqual({
      keyId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      description: '',
      state: 'Enabled',
      keyUsage: 'ENCRYPT_DECRYPT',
      suite: SuiteName.Aes256GcmKdfCtrHmacSha512CommitV2,
      createdAt: new Date(T0).toISOString(),
      currentVersion: 1,
      versions: [{ version: 1, createdAt: new Date(T0).toISOString() }],
      rotation: null,
      deletionDate: null,
      pendingWindowDays: null,
      destroyedAt: null,
      deniedUses: null,
      aliases: [],
      releasePolicy: null,
      quorum: null,
    });
    const full = await call('createKey', {
      description: 'orders',
      suite: SuiteName.XChaCha20Poly1305HkdfSha384CommitV1,
      rotationPeriodDays: 90,
      aliasName: 'alias/orders',
    });
    expect(full['keyMetadata']).toMatchObject({
      description: 'orders',
      suite: SuiteName.XChaCha20Poly1305HkdfSha384CommitV1,
      rotation: { periodDays: 90, nextRotationAt: new Date(T0 + 90 * DAY).toISOString() },
      aliases: ['alias/orders'],
    });
  });

  it('describeKey by id and by alias; KEY_NOT_FOUND for unknown ids and aliases', async () => {
    const id = await newKey({ aliasName: 'alias/d' });
    expect(await describe_('alias/d')).toEqual(await describe_(id));
    await rejects(call('describeKey', { keyId: 'alias/none' }), 'KEY_NOT_FOUND');
    await rejects(call('describeKey', { keyId: '44444444-4444-4444-8444-444444444444' }), 'KEY_NOT_FOUND');
  });

  it('enableKey / disableKey round trip; a disabled key refuses every cryptographic operation (KEY_DISABLED)', async () => {
    const id = await newKey({ aliasName: 'alias/k' });
    const blob = await encrypt(id, bytes('x'));
    const d = await call('disableKey', { keyId: 'alias/k' });
    expect((d['keyMetadata'] as Record<string, unknown>)['state']).toBe('Disabled');
    await rejects(call('encrypt', { keyId: id, plaintext: bytes('x') }), 'KEY_DISABLED');
    await rejects(call('decrypt', { ciphertextBlob: blob }), 'KEY_DISABLED');
    await rejects(call('generateDataKey', { keyId: id }), 'KEY_DISABLED');
    await rejects(call('generateDataKeyWithoutPlaintext', { keyId: id }), 'KEY_DISABLED');
    await rejects(call('reEncrypt', { ciphertextBlob: blob, destinationKeyId: id }), 'KEY_DISABLED');
    await rejects(call('rotateKey', { keyId: id }), 'KEY_DISABLED');
    const e = await call('enableKey', { keyId: id });
    expect((e['keyMetadata'] as Record<string, unknown>)['state']).toBe('Enabled');
    expect([...((await call('decrypt', { ciphertextBlob: blob }))['plaintext'] as Uint8Array)]).toEqual([
      ...bytes('x'),
    ]);
  });

  it('ListKeys pages by key id: limit, marker, truncated, nextMarker (across 3 pages)', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await newKey());
    ids.sort();
    await call('disableKey', { keyId: ids[2]! });
    const p1 = await call('listKeys', { limit: 2 });
    expect(p1).toEqual({
      keys: [
        { keyId: ids[0], state: 'Enabled' },
        { keyId: ids[1], state: 'Enabled' },
      ],
      truncated: true,
      nextMarker: ids[1],
    });
    const p2 = await call('listKeys', { limit: 2, marker: p1['nextMarker'] as string });
    expect(p2).toEqual({
      keys: [
        { keyId: ids[2], state: 'Disabled' },
        { keyId: ids[3], state: 'Enabled' },
      ],
      truncated: true,
      nextMarker: ids[3],
    });
    const p3 = await call('listKeys', { limit: 2, marker: p2['nextMarker'] as string });
    expect(p3).toEqual({ keys: [{ keyId: ids[4], state: 'Enabled' }], truncated: false, nextMarker: null });
    const all = await call('listKeys', {});
    expect((all['keys'] as unknown[]).length).toBe(5);
    expect(all['truncated']).toBe(false);
    expect(await call('listKeys', { limit: 5 })).toMatchObject({ truncated: false, nextMarker: null });
    expect(await call('listKeys', { marker: ids[4]! })).toEqual({
      keys: [],
      truncated: false,
      nextMarker: null,
    });
  });

  it('aliases: create, update, delete, list with paging and per key; usable wherever a key id is', async () => {
    const a = await newKey();
    const b = await newKey();
    expect(await call('createAlias', { aliasName: 'alias/a1', targetKeyId: a })).toEqual({
      aliasName: 'alias/a1',
      targetKeyId: a,
    });
    expect(await call('createAlias', { aliasName: 'alias/a2', targetKeyId: 'alias/a1' })).toEqual({
      aliasName: 'alias/a2',
      targetKeyId: a,
    });
    for (const n of ['alias/b1', 'alias/b2', 'alias/b3'])
      await call('createAlias', { aliasName: n, targetKeyId: b });
    const p1 = await call('listAliases', { limit: 2 });
    expect(p1).toEqual({
      aliases: [
        { aliasName: 'alias/a1', targetKeyId: a },
        { aliasName: 'alias/a2', targetKeyId: a },
      ],
      truncated: true,
      nextMarker: 'alias/a2',
    });
    const p2 = await call('listAliases', { limit: 2, marker: 'alias/a2' });
    expect(p2).toMatchObject({ truncated: true, nextMarker: 'alias/b2' });
    const p3 = await call('listAliases', { limit: 2, marker: 'alias/b2' });
    expect(p3).toEqual({
      aliases: [{ aliasName: 'alias/b3', targetKeyId: b }],
      truncated: false,
      nextMarker: null,
    });
    expect((await call('listAliases', { keyId: 'alias/b1' }))['aliases']).toHaveLength(3);
    expect((await describe_(b))['aliases']).toEqual(['alias/b1', 'alias/b2', 'alias/b3']);

    await rejects(call('createAlias', { aliasName: 'alias/a1', targetKeyId: b }), 'ALIAS_EXISTS');
    await rejects(call('updateAlias', { aliasName: 'alias/zz', targetKeyId: b }), 'ALIAS_NOT_FOUND');
    await rejects(call('createAlias', { aliasName: 'alias/ekms/x', targetKeyId: b }), 'ALIAS_INVALID');
    await rejects(call('createAlias', { aliasName: 'nope', targetKeyId: b }), 'ALIAS_INVALID');
    await rejects(
      call('createAlias', { aliasName: 'alias/x', targetKeyId: 'alias/missing' }),
      'KEY_NOT_FOUND',
    );

    expect(await call('updateAlias', { aliasName: 'alias/a1', targetKeyId: b })).toEqual({
      aliasName: 'alias/a1',
      targetKeyId: b,
    });
    const blob = await encrypt('alias/a1', bytes('to b'));
    expect(blobFields(blob).keyId).toBe(b);
    expect(await call('deleteAlias', { aliasName: 'alias/a1' })).toEqual({});
    await rejects(call('deleteAlias', { aliasName: 'alias/a1' }), 'ALIAS_NOT_FOUND');
    await rejects(call('encrypt', { keyId: 'alias/a1', plaintext: bytes('x') }), 'KEY_NOT_FOUND');
    // alias resolution in every key-taking operation
    const viaAlias: Array<[string, Params]> = [
      ['describeKey', { keyId: 'alias/b1' }],
      ['generateDataKey', { keyId: 'alias/b1' }],
      ['generateDataKeyWithoutPlaintext', { keyId: 'alias/b1' }],
      ['decrypt', { ciphertextBlob: blob, keyId: 'alias/b2' }],
      ['reEncrypt', { ciphertextBlob: blob, sourceKeyId: 'alias/b1', destinationKeyId: 'alias/a2' }],
      ['rotateKey', { keyId: 'alias/b1' }],
      ['enableKeyRotation', { keyId: 'alias/b1' }],
      ['disableKeyRotation', { keyId: 'alias/b1' }],
      ['disableKey', { keyId: 'alias/b1' }],
      ['enableKey', { keyId: 'alias/b1' }],
      ['scheduleKeyDeletion', { keyId: 'alias/b3' }],
      ['cancelKeyDeletion', { keyId: 'alias/b3' }],
    ];
    for (const [op, params] of viaAlias) await call(op, params);
    expect(authz.requests.filter((r) => r.keyId !== undefined && r.keyId !== a && r.keyId !== b)).toEqual([]);
  });
});

// ------------------------------------------------------------------------------------------------ crypto

describe('Encrypt / Decrypt', () => {
  it('round trip: result shapes, context bound, 0 and 4096 bytes, every suite (keys keep their suite)', async () => {
    for (const suite of Object.values(SuiteName)) {
      const id = await newKey({ suite });
      for (const size of [0, 1, 4096]) {
        const plaintext = new Uint8Array(size).map((_, i) => i * 7);
        const e = await call('encrypt', {
          keyId: id,
          plaintext: new Uint8Array(plaintext),
          encryptionContext: { tenant: 'acme', purpose: 'test' },
        });
        expect(Object.keys(e).sort()).toEqual(['ciphertextBlob', 'keyId', 'keyVersion']);
        expect(e['keyId']).toBe(id);
        expect(e['keyVersion']).toBe(1);
        expect(blobFields(e['ciphertextBlob'] as Uint8Array)).toMatchObject({ keyId: id, version: 1 });
        const d = await call('decrypt', {
          ciphertextBlob: e['ciphertextBlob'],
          encryptionContext: { purpose: 'test', tenant: 'acme' }, // order does not matter
        });
        expect(Object.keys(d).sort()).toEqual(['keyId', 'keyVersion', 'plaintext']);
        expect(hex(d['plaintext'] as Uint8Array)).toBe(hex(plaintext));
        expect(d['keyId']).toBe(id);
        expect(d['keyVersion']).toBe(1);
      }
    }
  });

  it('refuses a plaintext of 4097 bytes: PLAINTEXT_TOO_LARGE', async () => {
    const id = await newKey();
    await rejects(call('encrypt', { keyId: id, plaintext: new Uint8Array(4097) }), 'PLAINTEXT_TOO_LARGE');
    expect(LIMITS.maxEncryptPlaintextBytes).toBe(4096);
  });

  it.each([
    ['a different value', { tenant: 'evil' }],
    ['a different key', { Tenant: 'acme' }],
    ['a missing context', undefined],
    ['an extra entry', { tenant: 'acme', extra: '' }],
    ['an empty value instead', { tenant: '' }],
  ])('decrypt with %s context: DECRYPT_FAILED', async (_label, context) => {
    const id = await newKey();
    const blob = await encrypt(id, bytes('secret'), { tenant: 'acme' });
    await rejects(
      call('decrypt', {
        ciphertextBlob: blob,
        ...(context === undefined ? {} : { encryptionContext: context }),
      }),
      'DECRYPT_FAILED',
    );
  });

  it('decrypt of a blob sealed with no context, given one: DECRYPT_FAILED', async () => {
    const id = await newKey();
    const blob = await encrypt(id, bytes('secret'));
    await rejects(call('decrypt', { ciphertextBlob: blob, encryptionContext: { a: 'b' } }), 'DECRYPT_FAILED');
    expect((await call('decrypt', { ciphertextBlob: blob, encryptionContext: {} }))['keyId']).toBe(id);
  });

  it('decrypt naming another key than the blob’s: KEY_ID_MISMATCH (by id and by alias)', async () => {
    const a = await newKey({ aliasName: 'alias/a' });
    const b = await newKey({ aliasName: 'alias/b' });
    const blob = await encrypt(a, bytes('x'));
    await rejects(call('decrypt', { ciphertextBlob: blob, keyId: b }), 'KEY_ID_MISMATCH');
    await rejects(call('decrypt', { ciphertextBlob: blob, keyId: 'alias/b' }), 'KEY_ID_MISMATCH');
    await rejects(call('decrypt', { ciphertextBlob: blob, keyId: 'alias/none' }), 'KEY_NOT_FOUND');
    expect((await call('decrypt', { ciphertextBlob: blob, keyId: 'alias/a' }))['keyId']).toBe(a);
  });

  it('a blob of key A relabelled with key B’s id: CIPHERTEXT_KEY_MISMATCH (the commitment binds id and material)', async () => {
    // Both ids are 36-character UUIDs, so the relabelled blob parses. The enclave then looks up B and derives
    // the commitment from B's material over a header naming B: it differs from the stored one (made with A's
    // material), so the blob is refused before any decryption — CIPHERTEXT_KEY_MISMATCH, not DECRYPT_FAILED.
    const a = await newKey();
    const b = await newKey();
    const blob = await encrypt(a, bytes('for A only'));
    const relabelled = new Uint8Array(blob);
    relabelled.set(bytes(b), 4);
    expect(blobFields(relabelled).keyId).toBe(b);
    openedOutputs.length = 0;
    await rejects(call('decrypt', { ciphertextBlob: relabelled }), 'CIPHERTEXT_KEY_MISMATCH');
    expect(openedOutputs).toHaveLength(0); // no AEAD open was attempted
    await rejects(call('decrypt', { ciphertextBlob: relabelled, keyId: a }), 'KEY_ID_MISMATCH');
    await rejects(
      call('reEncrypt', { ciphertextBlob: relabelled, destinationKeyId: b }),
      'CIPHERTEXT_KEY_MISMATCH',
    );
  });

  it('a blob naming a version the key does not have: KEY_VERSION_NOT_FOUND (0, 2, 2^32-1)', async () => {
    const id = await newKey();
    const blob = await encrypt(id, bytes('x'));
    for (const v of [0, 2, 0xffff_ffff]) {
      await rejects(call('decrypt', { ciphertextBlob: withVersion(blob, v) }), 'KEY_VERSION_NOT_FOUND');
    }
  });

  it('a v1 blob relabelled as v2 (which exists): CIPHERTEXT_KEY_MISMATCH', async () => {
    const id = await newKey();
    const blob = await encrypt(id, bytes('x'));
    await call('rotateKey', { keyId: id });
    await rejects(call('decrypt', { ciphertextBlob: withVersion(blob, 2) }), 'CIPHERTEXT_KEY_MISMATCH');
  });

  it('a blob naming an unknown key: KEY_NOT_FOUND', async () => {
    const id = await newKey();
    const blob = new Uint8Array(await encrypt(id, bytes('x')));
    blob.set(bytes('55555555-5555-4555-8555-555555555555'), 4);
    await rejects(call('decrypt', { ciphertextBlob: blob }), 'KEY_NOT_FOUND');
  });

  it('tampering by field: salt/commitment → CIPHERTEXT_KEY_MISMATCH; ciphertext/tag → DECRYPT_FAILED; structure → CIPHERTEXT_*', async () => {
    const id = await newKey();
    const blob = await encrypt(id, bytes('sixteen bytes!!!'));
    const L = blob[3]!;
    await rejects(call('decrypt', { ciphertextBlob: flip(blob, 8 + L) }), 'CIPHERTEXT_KEY_MISMATCH'); // salt
    await rejects(call('decrypt', { ciphertextBlob: flip(blob, 40 + L) }), 'CIPHERTEXT_KEY_MISMATCH'); // commitment
    await rejects(call('decrypt', { ciphertextBlob: flip(blob, 74 + L) }), 'DECRYPT_FAILED'); // ciphertext
    await rejects(call('decrypt', { ciphertextBlob: flip(blob, -1) }), 'DECRYPT_FAILED'); // tag
    await rejects(call('decrypt', { ciphertextBlob: flip(blob, 0) }), 'CIPHERTEXT_VERSION_UNSUPPORTED');
    // Suite id: relabelled as another registered suite, the key schedule differs (commitment); unregistered, refused.
    await rejects(
      call('decrypt', { ciphertextBlob: flip(blob, 2) }),
      'CIPHERTEXT_KEY_MISMATCH',
      /uses another suite/,
    );
    const unregistered = blob.slice();
    unregistered[2] = 0x7f;
    await rejects(call('decrypt', { ciphertextBlob: unregistered }), 'SUITE_UNKNOWN');
    await rejects(
      call('decrypt', { ciphertextBlob: blob.subarray(0, blob.length - 1) }),
      'CIPHERTEXT_TRUNCATED',
    );
    await rejects(
      call('decrypt', { ciphertextBlob: Uint8Array.of(...blob, 0) }),
      'CIPHERTEXT_TRAILING_BYTES',
    );
    await rejects(
      call('decrypt', { ciphertextBlob: bytes('4WVsbG8gd29ybGQ=') }),
      'CIPHERTEXT_MALFORMED',
      /base64/,
    );
    await rejects(call('decrypt', { ciphertextBlob: new Uint8Array(0) }), 'CIPHERTEXT_TRUNCATED');
  });
});

describe('ReEncrypt', () => {
  it('moves a blob to another key and context inside the enclave; the plaintext is never in the result', async () => {
    const src = await newKey({ aliasName: 'alias/src' });
    const dst = await newKey({ suite: SuiteName.XChaCha20Poly1305HkdfSha384CommitV1 });
    await call('rotateKey', { keyId: dst });
    const secret = bytes('move me, never show me');
    const blob = await encrypt(src, secret, { from: 'a' });
    const r = await call('reEncrypt', {
      ciphertextBlob: blob,
      sourceEncryptionContext: { from: 'a' },
      sourceKeyId: 'alias/src',
      destinationKeyId: dst,
      destinationEncryptionContext: { to: 'b' },
    });
    expect(Object.keys(r).sort()).toEqual([
      'ciphertextBlob',
      'keyId',
      'keyVersion',
      'sourceKeyId',
      'sourceKeyVersion',
    ]);
    expect(r).toMatchObject({ keyId: dst, keyVersion: 2, sourceKeyId: src, sourceKeyVersion: 1 });
    expect(Buffer.from(r['ciphertextBlob'] as Uint8Array).includes(Buffer.from(secret))).toBe(false);
    await rejects(
      call('decrypt', { ciphertextBlob: r['ciphertextBlob'], encryptionContext: { from: 'a' } }),
      'DECRYPT_FAILED',
    );
    const d = await call('decrypt', { ciphertextBlob: r['ciphertextBlob'], encryptionContext: { to: 'b' } });
    expect(hex(d['plaintext'] as Uint8Array)).toBe(hex(secret));
  });

  it('needs the source context (DECRYPT_FAILED) and the source key named right (KEY_ID_MISMATCH)', async () => {
    const src = await newKey();
    const dst = await newKey();
    const blob = await encrypt(src, bytes('x'), { from: 'a' });
    await rejects(call('reEncrypt', { ciphertextBlob: blob, destinationKeyId: dst }), 'DECRYPT_FAILED');
    await rejects(
      call('reEncrypt', {
        ciphertextBlob: blob,
        sourceEncryptionContext: { from: 'a' },
        sourceKeyId: dst,
        destinationKeyId: dst,
      }),
      'KEY_ID_MISMATCH',
    );
    await rejects(
      call('reEncrypt', { ciphertextBlob: blob, destinationKeyId: 'alias/none' }),
      'KEY_NOT_FOUND',
    );
  });
});

describe('GenerateDataKey / GenerateDataKeyWithoutPlaintext', () => {
  it.each([
    ['default (AES_256)', {}, 32],
    ['AES_256', { keySpec: 'AES_256' }, 32],
    ['AES_128', { keySpec: 'AES_128' }, 16],
    ['numberOfBytes 1', { numberOfBytes: 1 }, 1],
    ['numberOfBytes 1024', { numberOfBytes: 1024 }, 1024],
  ])(
    '%s: a random data key and its blob, which decrypts to it under the context',
    async (_label, spec, length) => {
      const id = await newKey();
      const r = await call('generateDataKey', { keyId: id, encryptionContext: { obj: '1' }, ...spec });
      expect(Object.keys(r).sort()).toEqual(['ciphertextBlob', 'keyId', 'keyVersion', 'plaintext']);
      const dataKey = r['plaintext'] as Uint8Array;
      expect(dataKey).toHaveLength(length);
      if (length >= 16) expect(isZero(dataKey)).toBe(false);
      const d = await call('decrypt', {
        ciphertextBlob: r['ciphertextBlob'],
        encryptionContext: { obj: '1' },
      });
      expect(hex(d['plaintext'] as Uint8Array)).toBe(hex(dataKey));
      await rejects(call('decrypt', { ciphertextBlob: r['ciphertextBlob'] }), 'DECRYPT_FAILED');

      const w = await call('generateDataKeyWithoutPlaintext', { keyId: id, ...spec });
      expect(Object.keys(w).sort()).toEqual(['ciphertextBlob', 'keyId', 'keyVersion']);
      expect((await call('decrypt', { ciphertextBlob: w['ciphertextBlob'] }))['plaintext']).toHaveLength(
        length,
      );
    },
  );

  it.each([
    ['both keySpec and numberOfBytes', { keySpec: 'AES_256', numberOfBytes: 32 }],
    ['an unknown keySpec', { keySpec: 'AES_512' }],
    ['a keySpec of the wrong type', { keySpec: 256 }],
    ['numberOfBytes 0', { numberOfBytes: 0 }],
    ['numberOfBytes 1025', { numberOfBytes: 1025 }],
    ['a fractional numberOfBytes', { numberOfBytes: 16.5 }],
    ['numberOfBytes as text', { numberOfBytes: '32' }],
  ])('refuses %s: REQUEST_INVALID', async (_label, spec) => {
    const id = await newKey();
    await rejects(call('generateDataKey', { keyId: id, ...spec }), 'REQUEST_INVALID');
    await rejects(call('generateDataKeyWithoutPlaintext', { keyId: id, ...spec }), 'REQUEST_INVALID');
  });
});

// ------------------------------------------------------------------------------------------------ lifecycle

describe('rotation and deletion as clients see them', () => {
  it('blobs from v1 decrypt after a rotation; new blobs carry v2', async () => {
    const id = await newKey();
    const old = await encrypt(id, bytes('v1 data'));
    const r = await call('rotateKey', { keyId: id });
    expect(r['keyMetadata']).toMatchObject({ currentVersion: 2, versions: [{ version: 1 }, { version: 2 }] });
    const fresh = await call('encrypt', { keyId: id, plaintext: bytes('v2 data') });
    expect(fresh['keyVersion']).toBe(2);
    expect(blobFields(fresh['ciphertextBlob'] as Uint8Array).version).toBe(2);
    expect(await call('decrypt', { ciphertextBlob: old })).toMatchObject({ keyVersion: 1 });
    expect(await call('decrypt', { ciphertextBlob: fresh['ciphertextBlob'] })).toMatchObject({
      keyVersion: 2,
    });
    const dk = await call('generateDataKeyWithoutPlaintext', { keyId: id });
    expect(dk['keyVersion']).toBe(2);
  });

  it('enableKeyRotation (default 365 days) rotates automatically at the period; disableKeyRotation stops it', async () => {
    const id = await newKey();
    const on = await call('enableKeyRotation', { keyId: id });
    expect(on['keyMetadata']).toMatchObject({
      rotation: { periodDays: 365, nextRotationAt: new Date(T0 + 365 * DAY).toISOString() },
    });
    await call('enableKeyRotation', { keyId: id, rotationPeriodDays: 10 });
    clock.now += 10 * DAY;
    expect((await call('encrypt', { keyId: id, plaintext: bytes('x') }))['keyVersion']).toBe(2);
    const off = await call('disableKeyRotation', { keyId: id });
    expect((off['keyMetadata'] as Record<string, unknown>)['rotation']).toBeNull();
    clock.now += 100 * DAY;
    expect((await describe_(id))['currentVersion']).toBe(2);
  });

  it('scheduleKeyDeletion (default 30 days): uses refused and recorded; cancel → Disabled; the date → KEY_DESTROYED', async () => {
    const id = await newKey();
    const blob = await encrypt(id, bytes('x'));
    const s = await call('scheduleKeyDeletion', { keyId: id });
    expect(s['keyMetadata']).toMatchObject({
      state: 'PendingDeletion',
      pendingWindowDays: 30,
      deletionDate: new Date(T0 + 30 * DAY).toISOString(),
    });
    clock.now += DAY;
    await rejects(call('decrypt', { ciphertextBlob: blob }), 'KEY_PENDING_DELETION');
    await rejects(
      call('reEncrypt', { ciphertextBlob: blob, destinationKeyId: await newKey() }),
      'KEY_PENDING_DELETION',
    );
    expect((await describe_(id))['deniedUses']).toEqual({
      count: 2,
      lastAt: new Date(T0 + DAY).toISOString(),
      lastOperation: 'ReEncryptFrom',
    });
    const c = await call('cancelKeyDeletion', { keyId: id });
    expect(c['keyMetadata']).toMatchObject({
      state: 'Disabled',
      deletionDate: null,
      pendingWindowDays: null,
    });
    await rejects(call('cancelKeyDeletion', { keyId: id }), 'KEY_STATE_INVALID');
    await call('scheduleKeyDeletion', { keyId: id, pendingWindowInDays: 7 });
    clock.now += 7 * DAY;
    await rejects(call('decrypt', { ciphertextBlob: blob }), 'KEY_DESTROYED');
    expect(await describe_(id)).toMatchObject({
      state: 'Destroyed',
      destroyedAt: new Date(clock.now).toISOString(),
    });
    await rejects(call('cancelKeyDeletion', { keyId: id }), 'KEY_STATE_INVALID');
    await rejects(call('enableKey', { keyId: id }), 'KEY_STATE_INVALID');
  });

  it.each([6, 31, 0, 7.5])(
    'scheduleKeyDeletion refuses a window of %s days: REQUEST_INVALID',
    async (days) => {
      const id = await newKey();
      await rejects(call('scheduleKeyDeletion', { keyId: id, pendingWindowInDays: days }), 'REQUEST_INVALID');
      expect((await describe_(id))['state']).toBe('Enabled');
    },
  );
});

// ------------------------------------------------------------------------------------------------ parameters

describe('parameter checks (fail closed)', () => {
  it('every operation refuses an unknown parameter: REQUEST_INVALID', async () => {
    const id = await newKey({ aliasName: 'alias/p' });
    const blob = await encrypt(id, bytes('x'));
    const valid: Record<string, Params> = {
      createKey: {},
      describeKey: { keyId: id },
      listKeys: {},
      enableKey: { keyId: id },
      disableKey: { keyId: id },
      encrypt: { keyId: id, plaintext: bytes('x') },
      decrypt: { ciphertextBlob: blob },
      reEncrypt: { ciphertextBlob: blob, destinationKeyId: id },
      generateDataKey: { keyId: id },
      generateDataKeyWithoutPlaintext: { keyId: id },
      rotateKey: { keyId: id },
      enableKeyRotation: { keyId: id },
      disableKeyRotation: { keyId: id },
      scheduleKeyDeletion: { keyId: id },
      cancelKeyDeletion: { keyId: id },
      releaseKey: { keyId: id },
      putKeyReleasePolicy: { keyId: id, releasePolicy: null },
      putKeyPolicy: { keyId: id, policy: null },
      putKeyQuorum: { keyId: id, quorum: null },
      getKeyPolicy: { keyId: id },
      lintKeyPolicy: { keyId: id },
      createGrant: { keyId: id, grantee: 'someone', operations: ['Encrypt'] },
      listGrants: { keyId: id },
      revokeGrant: { keyId: id, grantId: 'g' },
      createAlias: { aliasName: 'alias/q', targetKeyId: id },
      updateAlias: { aliasName: 'alias/p', targetKeyId: id },
      deleteAlias: { aliasName: 'alias/p' },
      listAliases: {},
    };
    expect(Object.keys(valid).sort()).toEqual(Object.keys(KMS_OPERATIONS).sort());
    const puts = storage.counts.put;
    authz.requests.length = 0;
    for (const [op, params] of Object.entries(valid)) {
      const err = await rejects(call(op, { ...params, plaintextt: 1 }), 'REQUEST_INVALID');
      expect(err.message, op).toMatch(/unknown parameter "plaintextt"/);
    }
    expect(storage.counts.put).toBe(puts);
    expect(authz.requests).toEqual([]); // checked before the authorizer is asked
  });

  it.each([
    ['describeKey', 'keyId missing', 'REQUEST_INVALID', {}],
    ['describeKey', 'keyId a number', 'REQUEST_INVALID', { keyId: 5 }],
    ['describeKey', 'keyId empty', 'REQUEST_INVALID', { keyId: '' }],
    ['describeKey', 'keyId with a space', 'REQUEST_INVALID', { keyId: 'alias/a b' }],
    ['describeKey', 'keyId of 257 characters', 'REQUEST_INVALID', { keyId: 'a'.repeat(257) }],
    ['createKey', 'rotationPeriodDays 0', 'REQUEST_INVALID', { rotationPeriodDays: 0 }],
    ['createKey', 'rotationPeriodDays 2561', 'REQUEST_INVALID', { rotationPeriodDays: 2561 }],
    ['createKey', 'rotationPeriodDays 1.5', 'REQUEST_INVALID', { rotationPeriodDays: 1.5 }],
    ['createKey', 'a description of 8193 bytes', 'REQUEST_INVALID', { description: 'd'.repeat(8193) }],
    ['createKey', 'a description that is not text', 'REQUEST_INVALID', { description: bytes('d') }],
    ['createKey', 'an unknown suite', 'SUITE_UNKNOWN', { suite: 'AES-256-GCM' }],
    ['listKeys', 'limit 0', 'REQUEST_INVALID', { limit: 0 }],
    ['listKeys', 'limit 1001', 'REQUEST_INVALID', { limit: 1001 }],
    ['listKeys', 'a marker that is not text', 'REQUEST_INVALID', { marker: 5 }],
    ['listAliases', 'limit 0', 'REQUEST_INVALID', { limit: 0 }],
    ['encrypt', 'plaintext as text', 'REQUEST_INVALID', { keyId: 'alias/k', plaintext: 'secret' }],
    ['encrypt', 'plaintext missing', 'REQUEST_INVALID', { keyId: 'alias/k' }],
    [
      'encrypt',
      'context a string',
      'CONTEXT_INVALID',
      { keyId: 'alias/k', plaintext: bytes('x'), encryptionContext: 'a=b' },
    ],
    [
      'encrypt',
      'context an array',
      'CONTEXT_INVALID',
      { keyId: 'alias/k', plaintext: bytes('x'), encryptionContext: [['a', 'b']] },
    ],
    [
      'encrypt',
      'context null',
      'CONTEXT_INVALID',
      { keyId: 'alias/k', plaintext: bytes('x'), encryptionContext: null },
    ],
    [
      'encrypt',
      'context bytes',
      'CONTEXT_INVALID',
      { keyId: 'alias/k', plaintext: bytes('x'), encryptionContext: bytes('a') },
    ],
    [
      'encrypt',
      'a context value not a string',
      'CONTEXT_INVALID',
      { keyId: 'alias/k', plaintext: bytes('x'), encryptionContext: { a: 1 } },
    ],
    [
      'encrypt',
      'an empty context key',
      'CONTEXT_INVALID',
      { keyId: 'alias/k', plaintext: bytes('x'), encryptionContext: { '': 'v' } },
    ],
    [
      'encrypt',
      'a reserved context key',
      'CONTEXT_INVALID',
      { keyId: 'alias/k', plaintext: bytes('x'), encryptionContext: { 'EKMS:who': 'me' } },
    ],
    [
      'encrypt',
      '65 context entries',
      'CONTEXT_INVALID',
      {
        keyId: 'alias/k',
        plaintext: bytes('x'),
        encryptionContext: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])),
      },
    ],
    ['decrypt', 'ciphertextBlob as text', 'REQUEST_INVALID', { ciphertextBlob: 'AAAA' }],
    ['decrypt', 'keyId a number', 'REQUEST_INVALID', { ciphertextBlob: new Uint8Array(1), keyId: 1 }],
    ['reEncrypt', 'destinationKeyId missing', 'REQUEST_INVALID', { ciphertextBlob: new Uint8Array(1) }],
    [
      'reEncrypt',
      'a bad destination context',
      'CONTEXT_INVALID',
      {
        ciphertextBlob: new Uint8Array(1),
        destinationKeyId: 'alias/k',
        destinationEncryptionContext: { a: 2 },
      },
    ],
    [
      'enableKeyRotation',
      'rotationPeriodDays 0',
      'REQUEST_INVALID',
      { keyId: 'alias/k', rotationPeriodDays: 0 },
    ],
    ['createAlias', 'aliasName missing', 'REQUEST_INVALID', { targetKeyId: 'alias/k' }],
    ['createAlias', 'aliasName a number', 'REQUEST_INVALID', { aliasName: 7, targetKeyId: 'alias/k' }],
    ['deleteAlias', 'aliasName missing', 'REQUEST_INVALID', {}],
  ] as const)('%s with %s: %s', async (op, _label, code, params) => {
    await newKey({ aliasName: 'alias/k' });
    const before = await snapshot();
    authz.requests.length = 0;
    await rejects(call(op, params as Params), code);
    expect(await snapshot()).toEqual(before);
  });
});

// ------------------------------------------------------------------------------------------------ authorisation

describe('authorisation hook', () => {
  it('is asked with the right action, resolved key id and encryption context by every operation', async () => {
    const a = await newKey({ aliasName: 'alias/a' });
    const b = await newKey();
    const blob = await encrypt(a, bytes('x'), { t: '1' });
    authz.requests.length = 0;
    const expectations: Array<[string, Params, ReturnType<RecordingAuthorizer['seen']>]> = [
      ['createKey', {}, [{ action: 'CreateKey' }]],
      ['createKey', { aliasName: 'alias/new' }, [{ action: 'CreateKey' }, { action: 'CreateAlias' }]],
      ['describeKey', { keyId: 'alias/a' }, [{ action: 'DescribeKey', keyId: a }]],
      ['listKeys', {}, [{ action: 'ListKeys' }]],
      ['disableKey', { keyId: 'alias/a' }, [{ action: 'DisableKey', keyId: a }]],
      ['enableKey', { keyId: 'alias/a' }, [{ action: 'EnableKey', keyId: a }]],
      [
        'encrypt',
        { keyId: 'alias/a', plaintext: bytes('x'), encryptionContext: { t: '1' } },
        [{ action: 'Encrypt', keyId: a, context: { t: '1' } }],
      ],
      [
        'decrypt',
        { ciphertextBlob: blob, encryptionContext: { t: '1' } },
        [{ action: 'Decrypt', keyId: a, context: { t: '1' } }],
      ],
      [
        'reEncrypt',
        {
          ciphertextBlob: blob,
          sourceEncryptionContext: { t: '1' },
          destinationKeyId: b,
          destinationEncryptionContext: { u: '2' },
        },
        [
          { action: 'ReEncryptTo', keyId: b, context: { u: '2' } },
          { action: 'ReEncryptFrom', keyId: a, context: { t: '1' } },
        ],
      ],
      [
        'generateDataKey',
        { keyId: 'alias/a', encryptionContext: { o: 'x' } },
        [{ action: 'GenerateDataKey', keyId: a, context: { o: 'x' } }],
      ],
      [
        'generateDataKeyWithoutPlaintext',
        { keyId: b },
        [{ action: 'GenerateDataKeyWithoutPlaintext', keyId: b, context: {} }],
      ],
      ['rotateKey', { keyId: 'alias/a' }, [{ action: 'RotateKey', keyId: a }]],
      ['enableKeyRotation', { keyId: b }, [{ action: 'EnableKeyRotation', keyId: b }]],
      ['disableKeyRotation', { keyId: b }, [{ action: 'DisableKeyRotation', keyId: b }]],
      ['scheduleKeyDeletion', { keyId: b }, [{ action: 'ScheduleKeyDeletion', keyId: b }]],
      ['cancelKeyDeletion', { keyId: b }, [{ action: 'CancelKeyDeletion', keyId: b }]],
      [
        'createAlias',
        { aliasName: 'alias/c', targetKeyId: 'alias/a' },
        [{ action: 'CreateAlias', keyId: a }],
      ],
      ['listAliases', { keyId: 'alias/a' }, [{ action: 'ListAliases', keyId: a }]],
      ['listAliases', {}, [{ action: 'ListAliases' }]],
    ];
    for (const [op, params, expected] of expectations) {
      authz.requests.length = 0;
      await call(op, params);
      expect(authz.seen(), op).toEqual(expected);
      expect(authz.requests.every((r) => r.principal === DEFAULT_ADMIN)).toBe(true);
    }
  });

  it('updateAlias asks about the key the alias points to now, not only the new target (no alias hijacking)', async () => {
    // AWS KMS requires kms:UpdateAlias on both the current and the new key. With only the new target asked, a
    // principal allowed on its own key could repoint another tenant's alias to it and receive their encryptions.
    const victim = await newKey({ aliasName: 'alias/payroll' });
    const mine = await newKey();
    authz.deny = (r) => r.keyId === victim;
    await rejects(call('updateAlias', { aliasName: 'alias/payroll', targetKeyId: mine }), 'ACCESS_DENIED');
    expect(keystore.resolve('alias/payroll')).toBe(victim);
  });

  it('deleteAlias asks about the key the alias points to', async () => {
    const victim = await newKey({ aliasName: 'alias/payroll' });
    authz.requests.length = 0;
    authz.deny = (r) => r.keyId === victim;
    await rejects(call('deleteAlias', { aliasName: 'alias/payroll' }), 'ACCESS_DENIED');
    expect(keystore.resolve('alias/payroll')).toBe(victim);
    expect(authz.seen()).toEqual([{ action: 'DeleteAlias', keyId: victim }]);
  });

  it('a denial (ACCESS_DENIED) changes nothing: no key, version, state, alias, denied-use record or write', async () => {
    const a = await newKey({ aliasName: 'alias/a' });
    const pending = await newKey();
    const blobA = await encrypt(a, bytes('x'));
    const blobP = await encrypt(pending, bytes('x'));
    await call('scheduleKeyDeletion', { keyId: pending, pendingWindowInDays: 7 });
    const before = await snapshot();
    authz.deny = () => true;
    const attempts: Array<[string, Params]> = [
      ['createKey', {}],
      ['createKey', { aliasName: 'alias/new' }],
      ['rotateKey', { keyId: a }],
      ['disableKey', { keyId: a }],
      ['enableKeyRotation', { keyId: a }],
      ['scheduleKeyDeletion', { keyId: a }],
      ['cancelKeyDeletion', { keyId: pending }],
      ['createAlias', { aliasName: 'alias/b', targetKeyId: a }],
      ['updateAlias', { aliasName: 'alias/a', targetKeyId: pending }],
      ['deleteAlias', { aliasName: 'alias/a' }],
      ['encrypt', { keyId: a, plaintext: bytes('x') }],
      ['decrypt', { ciphertextBlob: blobA }],
      ['decrypt', { ciphertextBlob: blobP }], // would record a denied use if it got that far
      ['reEncrypt', { ciphertextBlob: blobA, destinationKeyId: a }],
      ['generateDataKey', { keyId: a }],
      ['describeKey', { keyId: a }],
      ['listKeys', {}],
      ['listAliases', {}],
    ];
    for (const [op, params] of attempts) {
      await rejects(call(op, params), 'ACCESS_DENIED');
    }
    expect(await snapshot()).toEqual(before);
  });

  it('createKey with aliasName: a denied CreateAlias leaves no key behind', async () => {
    authz.deny = (r) => r.action === KmsAction.CreateAlias;
    const puts = storage.counts.put;
    await rejects(call('createKey', { aliasName: 'alias/x' }), 'ACCESS_DENIED');
    expect(keystore.list()).toEqual([]);
    expect(storage.counts.put).toBe(puts);
  });

  it('the default authorizer (adminOnly) lets the admin do everything and denies anyone else', async () => {
    const admin: KmsContext = { keystore, authorizer: adminOnly, principal: DEFAULT_ADMIN };
    const id = ((await call('createKey', {}, admin))['keyMetadata'] as { keyId: string }).keyId;
    const other: Principal = { name: 'workload', authentication: 'signature', admin: false };
    const user: KmsContext = { keystore, authorizer: adminOnly, principal: other };
    await rejects(call('encrypt', { keyId: id, plaintext: bytes('x') }, user), 'ACCESS_DENIED');
    await rejects(call('createKey', {}, user), 'ACCESS_DENIED');
    await rejects(call('listKeys', {}, user), 'ACCESS_DENIED');
    expect(keystore.size).toBe(1);
  });
});

describe('createKey with aliasName is all or nothing', () => {
  it.each([
    ['an invalid alias name', 'not-an-alias'],
    ['a reserved alias name', 'alias/ekms/mine'],
  ])('%s: ALIAS_INVALID and no key is left behind', async (_label, aliasName) => {
    await rejects(call('createKey', { aliasName }), 'ALIAS_INVALID');
    expect(keystore.list()).toEqual([]);
  });

  it('an existing alias: ALIAS_EXISTS and no key is left behind', async () => {
    await newKey({ aliasName: 'alias/taken' });
    await rejects(call('createKey', { aliasName: 'alias/taken' }), 'ALIAS_EXISTS');
    expect(keystore.size).toBe(1);
  });

  it('a failing alias write (STORE_FULL): the request fails and no key is left behind', async () => {
    await newKey();
    // The key's record goes through; the one manifest write that lists both the key and its alias fails.
    storage.failNext('put', { name: (n) => n === 'keystore.manifest', code: 'STORE_FULL' });
    await rejects(call('createKey', { aliasName: 'alias/new' }), 'STORE_FULL');
    expect(keystore.size).toBe(1);
    expect(keystore.aliases().map((a) => a.name)).not.toContain('alias/new');
  });
});

// ------------------------------------------------------------------------------------------------ secrets

describe('secrets in memory', () => {
  it('encrypt zeroes the plaintext it was given, after sealing', async () => {
    const id = await newKey();
    const plaintext = bytes('zero me after use');
    const r = await call('encrypt', { keyId: id, plaintext });
    expect(isZero(plaintext)).toBe(true);
    const d = await call('decrypt', { ciphertextBlob: r['ciphertextBlob'] });
    expect(new TextDecoder().decode(d['plaintext'] as Uint8Array)).toBe('zero me after use');
  });

  it('encrypt zeroes the plaintext when the key refuses it (KEY_DISABLED)', async () => {
    const id = await newKey();
    await call('disableKey', { keyId: id });
    const plaintext = bytes('refused');
    await rejects(call('encrypt', { keyId: id, plaintext }), 'KEY_DISABLED');
    expect(isZero(plaintext)).toBe(true);
  });

  it.each([
    ['ACCESS_DENIED', true, 'alias/k', { t: 'x' }],
    ['KEY_NOT_FOUND', false, 'alias/none', { t: 'x' }],
    ['CONTEXT_INVALID', false, 'alias/k', { 'ekms:t': 'x' }],
  ] as const)(
    'encrypt zeroes the plaintext on every refusal (%s)',
    async (code, deny, keyId, encryptionContext) => {
      await newKey({ aliasName: 'alias/k' });
      authz.deny = () => deny;
      const plaintext = bytes('a secret the caller handed over');
      await rejects(call('encrypt', { keyId, plaintext, encryptionContext }), code);
      expect(isZero(plaintext)).toBe(true);
    },
  );

  it('GenerateDataKeyWithoutPlaintext zeroes the data key; GenerateDataKey returns it (the server zeroes it later)', async () => {
    const id = await newKey();
    sealedInputs.length = 0;
    const w = await call('generateDataKeyWithoutPlaintext', { keyId: id, numberOfBytes: 48 });
    expect(sealedInputs).toHaveLength(1);
    expect(sealedInputs[0]).toHaveLength(48);
    expect(isZero(sealedInputs[0]!)).toBe(true);
    expect((await call('decrypt', { ciphertextBlob: w['ciphertextBlob'] }))['plaintext']).toHaveLength(48);

    sealedInputs.length = 0;
    const g = await call('generateDataKey', { keyId: id, numberOfBytes: 48 });
    expect(sealedInputs).toHaveLength(1);
    expect(sealedInputs[0]).toBe(g['plaintext']);
    expect(isZero(sealedInputs[0]!)).toBe(false);
  });

  it('ReEncrypt zeroes its intermediate plaintext (Decrypt leaves its result for the server to zero)', async () => {
    const a = await newKey();
    const b = await newKey();
    const blob = await encrypt(a, bytes('intermediate'));
    openedOutputs.length = 0;
    const d = await call('decrypt', { ciphertextBlob: blob });
    expect(openedOutputs).toEqual([d['plaintext']]);
    expect(isZero(openedOutputs[0]!)).toBe(false);
    openedOutputs.length = 0;
    await call('reEncrypt', { ciphertextBlob: blob, destinationKeyId: b });
    expect(openedOutputs).toHaveLength(1);
    expect(isZero(openedOutputs[0]!)).toBe(true);
    // also when the destination refuses
    await call('disableKey', { keyId: b });
    openedOutputs.length = 0;
    await rejects(call('reEncrypt', { ciphertextBlob: blob, destinationKeyId: b }), 'KEY_DISABLED');
    expect(openedOutputs.every(isZero)).toBe(true);
  });

  it('no result of any operation carries key material', async () => {
    const results: unknown[] = [];
    const run = async (op: string, params: Params) => {
      const r = await call(op, params);
      results.push(r);
      return r;
    };
    const id = (
      (await run('createKey', { aliasName: 'alias/m', rotationPeriodDays: 1 }))['keyMetadata'] as {
        keyId: string;
      }
    ).keyId;
    await run('rotateKey', { keyId: id });
    const e = await run('encrypt', { keyId: id, plaintext: bytes('x') });
    await run('decrypt', { ciphertextBlob: e['ciphertextBlob'] });
    await run('reEncrypt', { ciphertextBlob: e['ciphertextBlob'], destinationKeyId: id });
    await run('generateDataKey', { keyId: id });
    await run('generateDataKeyWithoutPlaintext', { keyId: id });
    await run('describeKey', { keyId: id });
    await run('listKeys', {});
    await run('listAliases', {});
    const record: KeyRecord = await keystore.get(id);
    const materials = record.versions.map((v) => hex(v.material!));
    const found: string[] = [];
    const walk = (x: unknown): void => {
      if (x instanceof Uint8Array) {
        const h = hex(x);
        for (const m of materials) if (h.includes(m)) found.push(h);
      } else if (Array.isArray(x)) x.forEach(walk);
      else if (typeof x === 'object' && x !== null) Object.values(x).forEach(walk);
    };
    walk(results);
    expect(found).toEqual([]);
    expect(JSON.stringify(results)).not.toMatch(/material/i);
  });
});
