/**
 * The keystore (enclave/keystore/: keystore.ts, key-record.ts, manifest.ts, root-key.ts; docs/key-service.md §2–§6,
 * docs/sealed-state.md §4–§5), tested from outside over an in-memory host (test/helpers/memory-storage.ts) with an
 * injected clock: round trips of every method, persistence across a reopen, rotation (manual, automatic at the
 * period), the deletion window, storage failures (memory unchanged, next operation succeeds), rollback and
 * corruption of sealed blobs at start-up, the simulation root key, close(), and the limits.
 *
 * Within one run the keystore never re-reads the host (it keeps its state in memory; asserted below), so a host
 * serving an older blob mid-run cannot affect it: the sealer's tracker is exercised in test/enclave/sealing.test.ts.
 */
import { createHash, randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  decodeKeyRecord,
  encodeKeyRecord,
  type KeyRecord,
  KeyState,
} from '../../enclave/keystore/key-record.js';
import { Keystore, type KeystoreLogger, SEALING_PURPOSE } from '../../enclave/keystore/keystore.js';
import { decodeManifest, encodeManifest, MANIFEST_BLOB } from '../../enclave/keystore/manifest.js';
import {
  loadSimulationRootKey,
  SIMULATION_MARKER,
  SIMULATION_ROOT_KEY_BLOB,
} from '../../enclave/keystore/root-key.js';
import { SEALED_LIMITS, Sealer } from '../../enclave/sealing.js';
import { decodeCbor, encodeCbor } from '../../shared/cbor.js';
import { SEALED_ERROR_CODES } from '../../shared/crypto-errors.js';
import { EkmsError } from '../../shared/errors.js';
import { LIMITS } from '../../shared/limits.js';
import { SuiteId } from '../../shared/suites.js';
import { MemoryStorage } from '../helpers/memory-storage.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2030, 0, 1);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Deterministic bytes: SHA-256 counter mode over a label (test inputs only). */
function detBytes(label: string, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0, pos = 0; pos < length; i++, pos += 32) {
    const block = createHash('sha256').update(`${label}/${i}`).digest();
    out.set(block.subarray(0, Math.min(32, length - pos)), pos);
  }
  return out;
}

const ROOT = detBytes('keystore test root key', 32);
const OTHER_ROOT = detBytes('another root key', 32);
const hex = (b: Uint8Array | null): string | null => (b === null ? null : Buffer.from(b).toString('hex'));
const isZero = (b: Uint8Array): boolean => b.every((x) => x === 0);
const keyBlob = (id: string): string => `key.${id}`;

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

/** A comparable view of a record (material as hex). */
function view(r: KeyRecord) {
  return { ...r, versions: r.versions.map((v) => ({ ...v, material: hex(v.material) })) };
}

/** Everything observable about a keystore without causing transitions (call only when none is due). */
async function stateOf(ks: Keystore) {
  const list = ks.list();
  const records: Record<string, unknown> = {};
  for (const { id, state } of list) {
    if (state !== 'Unavailable') records[id] = view(await ks.get(id));
  }
  return { size: ks.size, list, aliases: ks.aliases(), records };
}

/** Opens a sealed blob of the keystore independently (same root key and purpose). */
function unseal(storage: MemoryStorage, name: string, root = ROOT): Uint8Array {
  const bytes = storage.peek(name);
  if (bytes === undefined) throw new Error(`no blob ${name}`);
  return new Sealer(root, { purpose: SEALING_PURPOSE }).open(name, { minVersion: 0 }, bytes);
}

/** The sealed version of a stored blob (docs/sealed-state.md §2 layout). */
function sealedVersion(bytes: Uint8Array): number {
  const L = bytes[23]!;
  return Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(24 + L));
}

function recordingLogger() {
  const lines: Array<{ level: string; obj: object; msg: string }> = [];
  const logger: KeystoreLogger = {
    info: (obj, msg) => lines.push({ level: 'info', obj, msg }),
    warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }),
  };
  return { lines, logger };
}

let storage: MemoryStorage;
let clock: { now: number };
const open = (opts: { root?: Uint8Array; logger?: KeystoreLogger } = {}) =>
  Keystore.open({
    storage,
    rootKey: new Uint8Array(opts.root ?? ROOT),
    now: () => clock.now,
    ...(opts.logger === undefined ? {} : { logger: opts.logger }),
  });
const basic = { description: 'a key', suite: SuiteId.Aes256GcmHkdfSha384CommitV1, rotationPeriodDays: null };

beforeEach(() => {
  storage = new MemoryStorage();
  clock = { now: T0 };
});

// ------------------------------------------------------------------------------------------------ helper

describe('test helper: MemoryStorage', () => {
  it('copies on put and get, keeps the history, and injects faults by name and code', async () => {
    const s = new MemoryStorage();
    const b = Uint8Array.of(1, 2, 3);
    await s.put('a', b);
    b.fill(9);
    const got = (await s.get('a'))!;
    expect([...got]).toEqual([1, 2, 3]);
    got.fill(0);
    expect([...(await s.get('a'))!]).toEqual([1, 2, 3]);
    await s.put('a', Uint8Array.of(4));
    expect(s.history('a').map((x) => [...x])).toEqual([[1, 2, 3], [4]]);
    s.rollback('a');
    expect([...(await s.get('a'))!]).toEqual([1, 2, 3]);
    s.failNext('put', { name: 'b', code: 'STORE_FULL' });
    await s.put('a', Uint8Array.of(5)); // another name: not affected
    await rejects(s.put('b', Uint8Array.of(1)), 'STORE_FULL');
    expect(s.has('b')).toBe(false);
    await s.put('b', Uint8Array.of(1)); // consumed
    s.failNext('put', { applied: true });
    await rejects(s.put('c', Uint8Array.of(7)), 'STORE_WRITE_FAILED');
    expect(s.has('c')).toBe(true);
    s.failNext('get', { name: /^c$/ });
    await rejects(s.get('c'), 'STORE_READ_FAILED');
    s.corrupt('c', 0, 0xff);
    expect([...s.peek('c')!]).toEqual([7 ^ 0xff]);
    expect(s.counts).toMatchObject({ put: 6, failed: 3 });
    expect(s.names()).toEqual(['a', 'b', 'c']);
  });
});

// ------------------------------------------------------------------------------------------------ round trips

describe('Keystore round trips', () => {
  it('opens an empty store by writing one empty manifest (a later missing manifest then means the host lost it)', async () => {
    const ks = await open();
    expect(ks.size).toBe(0);
    expect(ks.list()).toEqual([]);
    expect(ks.aliases()).toEqual([]);
    expect(storage.names()).toEqual([MANIFEST_BLOB]);
    expect(storage.counts.put).toBe(1);
    await open();
    expect(storage.counts.put).toBe(1);
    expect(await ks.sweep()).toBe(0);
  });

  it('create: a fresh Enabled key with one random 32-byte version, stored as key.<id> then the manifest', async () => {
    const ks = await open();
    const r = await ks.create({
      description: 'payments',
      suite: SuiteId.Aes256GcmHkdfSha384CommitV1,
      rotationPeriodDays: 90,
    });
    expect(r.id).toMatch(UUID);
    expect(r).toMatchObject({
      description: 'payments',
      createdAt: T0,
      suite: SuiteId.Aes256GcmHkdfSha384CommitV1,
      state: KeyState.Enabled,
      rotationPeriodDays: 90,
      nextRotationAt: T0 + 90 * DAY,
      deletion: null,
      destroyedAt: null,
      deniedUses: null,
    });
    expect(r.versions).toHaveLength(1);
    expect(r.versions[0]!.version).toBe(1);
    expect(r.versions[0]!.createdAt).toBe(T0);
    expect(r.versions[0]!.material).toHaveLength(32);
    expect(isZero(r.versions[0]!.material!)).toBe(false);
    expect(storage.names()).toEqual([keyBlob(r.id), MANIFEST_BLOB].sort());
    expect(storage.counts.put).toBe(3); // the first start's empty manifest, the record, the manifest
    const r2 = await ks.create({ ...basic, suite: SuiteId.XChaCha20Poly1305HkdfSha384CommitV1 });
    expect(r2.id).not.toBe(r.id);
    expect(hex(r2.versions[0]!.material)).not.toBe(hex(r.versions[0]!.material));
    expect(r2.rotationPeriodDays).toBeNull();
    expect(r2.nextRotationAt).toBeNull();
    expect(ks.size).toBe(2);
    expect(ks.list()).toEqual(
      [r, r2].map((x) => ({ id: x.id, state: 'Enabled' })).sort((a, b) => (a.id < b.id ? -1 : 1)),
    );
  });

  it('resolve, get and use by id and by alias; unknown ids and aliases are KEY_NOT_FOUND', async () => {
    const ks = await open();
    const r = await ks.create(basic);
    await ks.setAlias('alias/app', r.id, false);
    expect(ks.resolve(r.id)).toBe(r.id);
    expect(ks.resolve('alias/app')).toBe(r.id);
    expect((await ks.get('alias/app')).id).toBe(r.id);
    expect((await ks.use('alias/app', 'Encrypt')).id).toBe(r.id);
    await rejects(async () => ks.resolve('alias/nope'), 'KEY_NOT_FOUND');
    await rejects(async () => ks.resolve('00000000-0000-0000-0000-000000000000'), 'KEY_NOT_FOUND');
    await rejects(ks.get('alias/nope'), 'KEY_NOT_FOUND');
    await rejects(ks.use('not-a-key', 'Encrypt'), 'KEY_NOT_FOUND');
  });

  it('every change of an unknown key id is KEY_NOT_FOUND and writes nothing', async () => {
    const ks = await open();
    const ghost = '11111111-1111-4111-8111-111111111111';
    await rejects(ks.setEnabled(ghost, false), 'KEY_NOT_FOUND');
    await rejects(ks.rotate(ghost), 'KEY_NOT_FOUND');
    await rejects(ks.setRotation(ghost, 30), 'KEY_NOT_FOUND');
    await rejects(ks.scheduleDeletion(ghost, 7), 'KEY_NOT_FOUND');
    await rejects(ks.cancelDeletion(ghost), 'KEY_NOT_FOUND');
    await rejects(ks.setAlias('alias/x', ghost, false), 'KEY_NOT_FOUND');
    expect(storage.counts.put).toBe(1); // only the first start's empty manifest
  });

  it('setEnabled: Enabled ⇄ Disabled; a disabled key is refused (KEY_DISABLED); no-op changes write nothing', async () => {
    const ks = await open();
    const r = await ks.create(basic);
    const puts = storage.counts.put;
    expect((await ks.setEnabled(r.id, true)).state).toBe(KeyState.Enabled);
    expect(storage.counts.put).toBe(puts);
    expect((await ks.setEnabled(r.id, false)).state).toBe(KeyState.Disabled);
    expect(storage.counts.put).toBe(puts + 2);
    await rejects(ks.use(r.id, 'Encrypt'), 'KEY_DISABLED');
    expect(ks.list()).toEqual([{ id: r.id, state: 'Disabled' }]);
    expect((await ks.setEnabled(r.id, false)).state).toBe(KeyState.Disabled);
    expect((await ks.setEnabled(r.id, true)).state).toBe(KeyState.Enabled);
    expect((await ks.use(r.id, 'Encrypt')).state).toBe(KeyState.Enabled);
    expect((await ks.get(r.id)).deniedUses).toBeNull(); // uses of a disabled key are not "denied uses"
  });

  it('setRotation: on with a period (first rotation one period from now), off with null', async () => {
    const ks = await open();
    const r = await ks.create(basic);
    clock.now += 5 * DAY;
    const on = await ks.setRotation(r.id, 30);
    expect(on.rotationPeriodDays).toBe(30);
    expect(on.nextRotationAt).toBe(clock.now + 30 * DAY);
    expect(on.versions).toHaveLength(1);
    const off = await ks.setRotation(r.id, null);
    expect(off.rotationPeriodDays).toBeNull();
    expect(off.nextRotationAt).toBeNull();
    await ks.setEnabled(r.id, false);
    expect((await ks.setRotation(r.id, 10)).rotationPeriodDays).toBe(10); // allowed while disabled
  });

  it('aliases: create, list (sorted, per key), replace, delete, and their errors', async () => {
    const ks = await open();
    const a = await ks.create(basic);
    const b = await ks.create(basic);
    await ks.setAlias('alias/zeta', a.id, false);
    await ks.setAlias('alias/Alpha_1-x/y', 'alias/zeta', false); // target given by alias
    await ks.setAlias('alias/b', b.id, false);
    expect(ks.aliases()).toEqual([
      { name: 'alias/Alpha_1-x/y', keyId: a.id },
      { name: 'alias/b', keyId: b.id },
      { name: 'alias/zeta', keyId: a.id },
    ]);
    expect(ks.aliases(b.id)).toEqual([{ name: 'alias/b', keyId: b.id }]);
    await rejects(ks.setAlias('alias/b', a.id, false), 'ALIAS_EXISTS');
    await rejects(ks.setAlias('alias/new', a.id, true), 'ALIAS_NOT_FOUND');
    await ks.setAlias('alias/b', a.id, true);
    expect(ks.resolve('alias/b')).toBe(a.id);
    expect(ks.aliases(b.id)).toEqual([]);
    await ks.deleteAlias('alias/b');
    await rejects(async () => ks.resolve('alias/b'), 'KEY_NOT_FOUND');
    await rejects(ks.deleteAlias('alias/b'), 'ALIAS_NOT_FOUND');
    await rejects(ks.setAlias('alias/dangling', 'alias/nope', false), 'KEY_NOT_FOUND');
  });

  it.each([
    ['no prefix', 'app'],
    ['empty name', 'alias/'],
    ['space', 'alias/a b'],
    ['dot', 'alias/a.b'],
    ['251 characters', `alias/${'a'.repeat(251)}`],
    ['reserved alias/ekms/', 'alias/ekms/root'],
    ['upper-case prefix', 'ALIAS/app'],
  ])('refuses an invalid alias name (%s): ALIAS_INVALID', async (_label, name) => {
    const ks = await open();
    const a = await ks.create(basic);
    const puts = storage.counts.put;
    await rejects(ks.setAlias(name, a.id, false), 'ALIAS_INVALID');
    await rejects(ks.deleteAlias(name), 'ALIAS_INVALID');
    expect(storage.counts.put).toBe(puts);
  });

  it('accepts the longest alias name (alias/ + 250)', async () => {
    const ks = await open();
    const a = await ks.create(basic);
    const name = `alias/${'a'.repeat(250)}`;
    await ks.setAlias(name, a.id, false);
    expect((await open()).resolve(name)).toBe(a.id);
  });

  it('changes are serialised: concurrent rotations each add one version', async () => {
    const ks = await open();
    const r = await ks.create(basic);
    const results = await Promise.all([ks.rotate(r.id), ks.rotate(r.id), ks.rotate(r.id), ks.create(basic)]);
    expect(results.slice(0, 3).map((x) => x.versions.length)).toEqual([2, 3, 4]);
    expect((await ks.get(r.id)).versions.map((v) => v.version)).toEqual([1, 2, 3, 4]);
    expect((await open()).size).toBe(2);
  });
});

// ------------------------------------------------------------------------------------------------ persistence

describe('persistence across a reopen', () => {
  it('a second Keystore over the same storage and root key sees the same keys, versions, states, aliases and deniedUses', async () => {
    const ks = await open();
    const enabled = await ks.create({ ...basic, description: 'enabled', rotationPeriodDays: 30 });
    const disabled = await ks.create({ ...basic, description: 'disabled' });
    const rotated = await ks.create({ ...basic, suite: SuiteId.XChaCha20Poly1305HkdfSha384CommitV1 });
    const pending = await ks.create({ ...basic, description: 'pending' });
    const destroyed = await ks.create({ ...basic, description: 'destroyed' });
    await ks.setEnabled(disabled.id, false);
    clock.now += DAY;
    await ks.rotate(rotated.id);
    clock.now += DAY;
    await ks.rotate(rotated.id);
    await ks.scheduleDeletion(destroyed.id, 7);
    clock.now += 8 * DAY;
    await ks.scheduleDeletion(pending.id, 30);
    await rejects(ks.use(pending.id, 'Decrypt'), 'KEY_PENDING_DELETION');
    await ks.setAlias('alias/one', enabled.id, false);
    await ks.setAlias('alias/two', enabled.id, false);
    await ks.setAlias('alias/rot', rotated.id, false);
    expect((await ks.get(destroyed.id)).state).toBe(KeyState.Destroyed);
    const before = await stateOf(ks);
    expect(Object.keys(before.records)).toHaveLength(5);

    const again = await open();
    expect(await stateOf(again)).toEqual(before);
    expect((await again.get(pending.id)).deniedUses).toEqual({
      count: 1,
      lastAt: clock.now,
      lastOperation: 'Decrypt',
    });
    // and a third generation after further changes, continuing the sealed versions
    await again.rotate(enabled.id);
    await again.deleteAlias('alias/two');
    const third = await open();
    expect(await stateOf(third)).toEqual(await stateOf(again));
    expect((await third.get(enabled.id)).versions).toHaveLength(2);
  });

  it('each write seals a higher version of the record and of the manifest (also after a reopen)', async () => {
    const ks = await open();
    const r = await ks.create(basic);
    await ks.rotate(r.id);
    await ks.setEnabled(r.id, false);
    expect(storage.history(keyBlob(r.id)).map(sealedVersion)).toEqual([1, 2, 3]);
    // The manifest's first version is the empty one the first start stored.
    expect(storage.history(MANIFEST_BLOB).map(sealedVersion)).toEqual([1, 2, 3, 4]);
    const again = await open();
    await again.setEnabled(r.id, true);
    expect(sealedVersion(storage.peek(keyBlob(r.id))!)).toBe(4);
    expect(sealedVersion(storage.peek(MANIFEST_BLOB)!)).toBe(5);
    expect(decodeManifest(unseal(storage, MANIFEST_BLOB)).keys.get(r.id)).toBe(4);
  });

  it('within a run the keystore never re-reads the host (so the sealer tracker has nothing to catch there)', async () => {
    const ks = await open();
    const r = await ks.create(basic);
    const gets = storage.counts.get;
    await ks.rotate(r.id);
    await ks.setAlias('alias/x', r.id, false);
    await ks.get(r.id);
    await ks.use(r.id, 'Encrypt');
    await ks.setEnabled(r.id, false);
    expect(storage.counts.get).toBe(gets);
    // A host that serves an older blob mid-run changes nothing in memory; the next write supersedes it.
    storage.rollback(keyBlob(r.id), 2);
    expect((await ks.get(r.id)).versions).toHaveLength(2);
    await ks.setEnabled(r.id, true);
    const again = await open();
    expect((await again.get(r.id)).versions).toHaveLength(2);
  });
});

// ------------------------------------------------------------------------------------------------ rotation

describe('rotation', () => {
  it('manual rotation adds a version, keeps the old ones unchanged, and moves nextRotationAt', async () => {
    const ks = await open();
    const r = await ks.create({ ...basic, rotationPeriodDays: 30 });
    const v1 = hex(r.versions[0]!.material);
    clock.now += 10 * DAY;
    const r2 = await ks.rotate(r.id);
    expect(r2.versions.map((v) => v.version)).toEqual([1, 2]);
    expect(hex(r2.versions[0]!.material)).toBe(v1);
    expect(hex(r2.versions[1]!.material)).not.toBe(v1);
    expect(r2.versions[1]!.createdAt).toBe(clock.now);
    expect(r2.nextRotationAt).toBe(clock.now + 30 * DAY);
    const plain = await ks.rotate((await ks.create(basic)).id);
    expect(plain.nextRotationAt).toBeNull();
    const again = await open();
    expect(view(await again.get(r.id))).toEqual(view(r2));
  });

  it('automatic rotation happens at the period, not before; old versions stay; it is persisted', async () => {
    const ks = await open();
    const r = await ks.create({ ...basic, rotationPeriodDays: 30 });
    clock.now = T0 + 30 * DAY - 1;
    const puts = storage.counts.put;
    expect((await ks.get(r.id)).versions).toHaveLength(1);
    expect(storage.counts.put).toBe(puts);
    clock.now = T0 + 30 * DAY;
    const rotated = await ks.use(r.id, 'Encrypt');
    expect(rotated.versions.map((v) => v.version)).toEqual([1, 2]);
    expect(hex(rotated.versions[0]!.material)).toBe(hex(r.versions[0]!.material));
    expect(rotated.nextRotationAt).toBe(clock.now + 30 * DAY);
    expect((await open()).list()).toEqual([{ id: r.id, state: 'Enabled' }]);
    expect((await (await open()).get(r.id)).versions).toHaveLength(2);
  });

  it('a missed period rotates once, not once per period', async () => {
    const ks = await open();
    const r = await ks.create({ ...basic, rotationPeriodDays: 1 });
    clock.now += 10 * DAY + 5;
    const x = await ks.get(r.id);
    expect(x.versions).toHaveLength(2);
    expect(x.nextRotationAt).toBe(clock.now + DAY);
  });

  it('a disabled key is not rotated automatically; it rotates when touched after being enabled', async () => {
    const ks = await open();
    const r = await ks.create({ ...basic, rotationPeriodDays: 2 });
    await ks.setEnabled(r.id, false);
    clock.now += 3 * DAY;
    expect((await ks.get(r.id)).versions).toHaveLength(1);
    expect(await ks.sweep()).toBe(0);
    await ks.setEnabled(r.id, true);
    expect((await ks.get(r.id)).versions).toHaveLength(2);
  });

  it('sweep() applies every due rotation and deletion without the keys being touched', async () => {
    const ks = await open();
    const a = await ks.create({ ...basic, rotationPeriodDays: 7 });
    const b = await ks.create({ ...basic, rotationPeriodDays: 7 });
    const c = await ks.create(basic);
    const d = await ks.create(basic);
    await ks.scheduleDeletion(d.id, 7);
    clock.now += 7 * DAY;
    expect(await ks.sweep()).toBe(3);
    expect(await ks.sweep()).toBe(0);
    const again = await open();
    expect((await again.get(a.id)).versions).toHaveLength(2);
    expect((await again.get(b.id)).versions).toHaveLength(2);
    expect((await again.get(c.id)).versions).toHaveLength(1);
    expect((await again.get(d.id)).state).toBe(KeyState.Destroyed);
  });

  it('rotate refuses keys that are not Enabled (KEY_DISABLED, KEY_PENDING_DELETION, KEY_DESTROYED)', async () => {
    const ks = await open();
    const r = await ks.create(basic);
    await ks.setEnabled(r.id, false);
    await rejects(ks.rotate(r.id), 'KEY_DISABLED');
    await ks.scheduleDeletion(r.id, 7);
    await rejects(ks.rotate(r.id), 'KEY_PENDING_DELETION');
    await rejects(ks.setRotation(r.id, 30), 'KEY_STATE_INVALID');
    clock.now += 7 * DAY;
    await rejects(ks.rotate(r.id), 'KEY_DESTROYED');
    await rejects(ks.setRotation(r.id, 30), 'KEY_STATE_INVALID');
    expect((await ks.get(r.id)).versions).toHaveLength(1);
  });
});

// ------------------------------------------------------------------------------------------------ deletion

describe('deletion window', () => {
  it.each([7, 30])('schedules the deletion %i days ahead, persisted', async (days) => {
    const ks = await open();
    const r = await ks.create(basic);
    const p = await ks.scheduleDeletion(r.id, days);
    expect(p.state).toBe(KeyState.PendingDeletion);
    expect(p.deletion).toEqual({ scheduledAt: T0, deletionDate: T0 + days * DAY, windowDays: days });
    expect(hex(p.versions[0]!.material)).toBe(hex(r.versions[0]!.material));
    const again = await open();
    expect(view(await again.get(r.id))).toEqual(view(p));
    await rejects(ks.scheduleDeletion(r.id, days), 'KEY_STATE_INVALID');
  });

  it('a use during the window is refused with KEY_PENDING_DELETION and recorded (count, time, operation), persisted', async () => {
    const ks = await open();
    const r = await ks.create(basic);
    await ks.setAlias('alias/doomed', r.id, false);
    await ks.scheduleDeletion(r.id, 10);
    clock.now += DAY;
    await rejects(ks.use(r.id, 'Encrypt'), 'KEY_PENDING_DELETION', /pending deletion/);
    expect((await ks.get(r.id)).deniedUses).toEqual({ count: 1, lastAt: T0 + DAY, lastOperation: 'Encrypt' });
    clock.now += DAY;
    await rejects(ks.use('alias/doomed', 'Decrypt'), 'KEY_PENDING_DELETION');
    const expected = { count: 2, lastAt: T0 + 2 * DAY, lastOperation: 'Decrypt' };
    expect((await ks.get(r.id)).deniedUses).toEqual(expected);
    const again = await open();
    expect((await again.get(r.id)).deniedUses).toEqual(expected);
    await rejects(again.use(r.id, 'GenerateDataKey'), 'KEY_PENDING_DELETION');
    expect((await (await open()).get(r.id)).deniedUses?.count).toBe(3);
  });

  it('a use during the window stays KEY_PENDING_DELETION when recording it fails (STORE_FULL)', async () => {
    const ks = await open();
    const r = await ks.create(basic);
    await ks.scheduleDeletion(r.id, 10);
    storage.failNext('put', { code: 'STORE_FULL' });
    await rejects(ks.use(r.id, 'Encrypt'), 'KEY_PENDING_DELETION');
    expect(storage.pendingFaults).toBe(0);
    expect((await ks.get(r.id)).deniedUses).toBeNull();
  });

  it('enable/disable of a key pending deletion is KEY_STATE_INVALID', async () => {
    const ks = await open();
    const r = await ks.create(basic);
    await ks.scheduleDeletion(r.id, 7);
    await rejects(ks.setEnabled(r.id, true), 'KEY_STATE_INVALID');
    await rejects(ks.setEnabled(r.id, false), 'KEY_STATE_INVALID');
  });

  it('cancel → Disabled (must be enabled on purpose); cancelling a key not pending deletion is KEY_STATE_INVALID', async () => {
    const ks = await open();
    const r = await ks.create(basic);
    await rejects(ks.cancelDeletion(r.id), 'KEY_STATE_INVALID');
    await ks.scheduleDeletion(r.id, 7);
    const c = await ks.cancelDeletion(r.id);
    expect(c.state).toBe(KeyState.Disabled);
    expect(c.deletion).toBeNull();
    await rejects(ks.use(r.id, 'Encrypt'), 'KEY_DISABLED');
    clock.now += 30 * DAY;
    expect((await ks.get(r.id)).state).toBe(KeyState.Disabled); // the old date does not destroy it
    expect((await (await open()).get(r.id)).state).toBe(KeyState.Disabled);
    await ks.setEnabled(r.id, true);
    expect((await ks.use(r.id, 'Encrypt')).versions[0]!.material).not.toBeNull();
  });

  it('at the deletion date (not a millisecond before) the key is Destroyed: material zeroed and removed, tombstone kept', async () => {
    const ks = await open();
    const r = await ks.create(basic);
    await ks.rotate(r.id);
    await ks.setAlias('alias/gone', r.id, false);
    const p = await ks.scheduleDeletion(r.id, 7);
    const held = (await ks.get(r.id)).versions.map((v) => v.material!);
    clock.now = p.deletion!.deletionDate - 1;
    expect((await ks.get(r.id)).state).toBe(KeyState.PendingDeletion);
    clock.now = p.deletion!.deletionDate;
    const d = await ks.get(r.id);
    expect(d.state).toBe(KeyState.Destroyed);
    expect(d.destroyedAt).toBe(clock.now);
    expect(d.deletion).toBeNull();
    expect(d.versions.map((v) => [v.version, v.material])).toEqual([
      [1, null],
      [2, null],
    ]);
    expect(held.every(isZero)).toBe(true);
    await rejects(ks.use(r.id, 'Decrypt'), 'KEY_DESTROYED');
    await rejects(ks.use('alias/gone', 'Decrypt'), 'KEY_DESTROYED');
    // The stored record, read independently, carries no material.
    const stored = decodeKeyRecord(unseal(storage, keyBlob(r.id)), keyBlob(r.id));
    expect(stored.state).toBe(KeyState.Destroyed);
    expect(stored.versions.every((v) => v.material === null)).toBe(true);
    // The tombstone survives a reopen.
    const again = await open();
    expect(again.list()).toEqual([{ id: r.id, state: 'Destroyed' }]);
    await rejects(again.use(r.id, 'Decrypt'), 'KEY_DESTROYED');
    expect(view(await again.get(r.id))).toEqual(view(d));
  });

  it('a destroyed key cannot come back or be changed (KEY_STATE_INVALID), nor receive an alias', async () => {
    const ks = await open();
    const r = await ks.create(basic);
    await ks.scheduleDeletion(r.id, 7);
    clock.now += 7 * DAY;
    // Not touched yet: the cancel sees the due destruction first.
    await rejects(ks.cancelDeletion(r.id), 'KEY_STATE_INVALID');
    expect((await ks.get(r.id)).state).toBe(KeyState.Destroyed);
    await rejects(ks.cancelDeletion(r.id), 'KEY_STATE_INVALID');
    await rejects(ks.setEnabled(r.id, true), 'KEY_STATE_INVALID');
    await rejects(ks.scheduleDeletion(r.id, 7), 'KEY_STATE_INVALID');
    await rejects(ks.setAlias('alias/late', r.id, false), 'KEY_STATE_INVALID');
  });

  it('sweep() destroys keys past their date; a failing store leaves them pending and the next sweep retries', async () => {
    const { lines, logger } = recordingLogger();
    const ks = await open({ logger });
    const r = await ks.create(basic);
    const held = r.versions[0]!.material!;
    await ks.scheduleDeletion(r.id, 7);
    clock.now += 7 * DAY;
    storage.failNext('put', { code: 'STORE_FULL' });
    expect(await ks.sweep()).toBe(0);
    expect(lines.some((l) => l.level === 'warn' && (l.obj as { code?: string }).code === 'STORE_FULL')).toBe(
      true,
    );
    expect(isZero(held)).toBe(false);
    expect(ks.list()).toEqual([{ id: r.id, state: 'PendingDeletion' }]);
    expect(await ks.sweep()).toBe(1);
    expect(isZero(held)).toBe(true);
    expect(ks.list()).toEqual([{ id: r.id, state: 'Destroyed' }]);
  });
});

// ------------------------------------------------------------------------------------------------ storage failures

describe('storage failures: the operation fails with the store code, memory is unchanged, the next one succeeds', () => {
  interface Fixture {
    ks: Keystore;
    a: string;
    pending: string;
  }
  async function fixture(): Promise<Fixture> {
    const ks = await open();
    const a = (await ks.create({ ...basic, rotationPeriodDays: 30 })).id;
    const pending = (await ks.create(basic)).id;
    await ks.scheduleDeletion(pending, 7);
    await ks.setAlias('alias/a', a, false);
    return { ks, a, pending };
  }
  const changes: Array<[string, boolean, (f: Fixture) => Promise<unknown>]> = [
    ['create', true, (f) => f.ks.create(basic)],
    ['rotate', true, (f) => f.ks.rotate(f.a)],
    ['setEnabled', true, (f) => f.ks.setEnabled(f.a, false)],
    ['setRotation', true, (f) => f.ks.setRotation(f.a, 10)],
    ['scheduleDeletion', true, (f) => f.ks.scheduleDeletion(f.a, 7)],
    ['cancelDeletion', true, (f) => f.ks.cancelDeletion(f.pending)],
    ['setAlias', false, (f) => f.ks.setAlias('alias/b', f.a, false)],
    ['setAlias (replace)', false, (f) => f.ks.setAlias('alias/a', f.pending, true)],
    ['deleteAlias', false, (f) => f.ks.deleteAlias('alias/a')],
  ];
  const cases = changes.flatMap(([label, writesRecord, run]) => [
    ...(writesRecord
      ? [[`${label}, key record put fails (STORE_FULL)`, /^key\./, 'STORE_FULL', run] as const]
      : []),
    [`${label}, manifest put fails (STORE_WRITE_FAILED)`, MANIFEST_BLOB, 'STORE_WRITE_FAILED', run] as const,
    [`${label}, any put fails (STORAGE_UNAVAILABLE)`, undefined, 'STORAGE_UNAVAILABLE', run] as const,
  ]);

  it.each(cases)('%s', async (_label, name, code, run) => {
    const f = await fixture();
    const before = await stateOf(f.ks);
    storage.failNext('put', { ...(name === undefined ? {} : { name }), code });
    await rejects(run(f), code);
    expect(storage.pendingFaults).toBe(0);
    expect(await stateOf(f.ks)).toEqual(before);
    await run(f);
    const after = await stateOf(f.ks);
    expect(after).not.toEqual(before);
    expect(await stateOf(await open())).toEqual(after);
  });

  it('a due transition that cannot be stored fails the read (fail closed) and is applied by the next one', async () => {
    const f = await fixture();
    clock.now += 7 * DAY;
    storage.failNext('put', { code: 'STORE_FULL' });
    await rejects(f.ks.get(f.pending), 'STORE_FULL');
    expect(f.ks.list().find((k) => k.id === f.pending)?.state).toBe('PendingDeletion');
    expect((await f.ks.get(f.pending)).state).toBe(KeyState.Destroyed);
  });

  it('a create whose record was stored but whose manifest was not is ignored after a reopen (orphan record)', async () => {
    const ks = await open();
    const kept = await ks.create(basic);
    storage.failNext('put', { name: MANIFEST_BLOB, code: 'STORE_FULL' });
    await rejects(ks.create(basic), 'STORE_FULL');
    expect(storage.names().filter((n) => n.startsWith('key.'))).toHaveLength(2);
    expect(ks.size).toBe(1);
    const again = await open();
    expect(again.list()).toEqual([{ id: kept.id, state: 'Enabled' }]);
  });

  it('a failed FIRST create (record stored, manifest write failed) does not stop the next start', async () => {
    // docs/key-service.md §3: "the record of a key whose creation was never acknowledged (not in the manifest:
    // ignored)". On an empty keystore there is no manifest yet, so the orphan check refuses to start instead.
    const ks = await open();
    storage.failNext('put', { name: MANIFEST_BLOB, code: 'STORE_FULL' });
    await rejects(ks.create(basic), 'STORE_FULL');
    expect(ks.size).toBe(0);
    expect(storage.names().filter((n) => n.startsWith('key.'))).toHaveLength(1);
    const again = await open(); // the disk-full create was never acknowledged: starting empty loses nothing
    expect(again.size).toBe(0);
  });

  it('a read failure at start-up is the store code (transient), not KEY_UNAVAILABLE', async () => {
    const ks = await open();
    const r = await ks.create(basic);
    storage.failNext('get', { name: MANIFEST_BLOB });
    await rejects(open(), 'STORE_READ_FAILED');
    storage.failNext('get', { name: keyBlob(r.id), code: 'STORAGE_UNAVAILABLE' });
    await rejects(open(), 'STORAGE_UNAVAILABLE');
    expect((await open()).list()).toEqual([{ id: r.id, state: 'Enabled' }]);
  });
});

// ------------------------------------------------------------------------------------------------ reopen checks

describe('rollback and corruption at start-up', () => {
  async function twoKeys() {
    const ks = await open();
    const victim = await ks.create({ ...basic, description: 'victim' });
    const other = await ks.create({ ...basic, description: 'other' });
    await ks.setAlias('alias/victim', victim.id, false);
    return { ks, victim: victim.id, other: other.id };
  }
  async function expectOnlyVictimUnavailable(victim: string, other: string, reason: string) {
    const { lines, logger } = recordingLogger();
    const ks = await open({ logger });
    expect(ks.list().find((k) => k.id === victim)?.state).toBe('Unavailable');
    const err = await rejects(ks.get(victim), 'KEY_UNAVAILABLE');
    expect(err.details?.['reason']).toBe(reason);
    await rejects(ks.use('alias/victim', 'Decrypt'), 'KEY_UNAVAILABLE');
    await rejects(ks.rotate(victim), 'KEY_UNAVAILABLE');
    await rejects(ks.setAlias('alias/v2', victim, false), 'KEY_UNAVAILABLE');
    expect((await ks.use(other, 'Encrypt')).id).toBe(other);
    expect(lines.some((l) => (l.obj as { code?: string }).code === reason)).toBe(true);
    return ks;
  }

  it('an older key record (earlier sealed version) → that key KEY_UNAVAILABLE (SEALED_BLOB_ROLLBACK), others work', async () => {
    const { ks, victim, other } = await twoKeys();
    await ks.rotate(victim);
    storage.rollback(keyBlob(victim));
    const again = await expectOnlyVictimUnavailable(victim, other, 'SEALED_BLOB_ROLLBACK');
    // The unavailable key stays listed through later writes, and comes back once the host serves the right blob.
    await again.create(basic);
    expect(again.size).toBe(3);
    storage.restore(keyBlob(victim), 1);
    expect((await (await open()).get(victim)).versions).toHaveLength(2);
  });

  it('a missing key record → KEY_UNAVAILABLE (SEALED_BLOB_ROLLBACK)', async () => {
    const { victim, other } = await twoKeys();
    storage.drop(keyBlob(victim));
    await expectOnlyVictimUnavailable(victim, other, 'SEALED_BLOB_ROLLBACK');
  });

  it('a corrupted key record (ciphertext byte) → KEY_UNAVAILABLE (SEALED_BLOB_CORRUPT)', async () => {
    const { victim, other } = await twoKeys();
    storage.corrupt(keyBlob(victim), -20);
    await expectOnlyVictimUnavailable(victim, other, 'SEALED_BLOB_CORRUPT');
  });

  it('a truncated key record → KEY_UNAVAILABLE (SEALED_BLOB_CORRUPT)', async () => {
    const { victim, other } = await twoKeys();
    storage.truncate(keyBlob(victim), 30);
    await expectOnlyVictimUnavailable(victim, other, 'SEALED_BLOB_CORRUPT');
  });

  it("another key's record served under the victim's name → KEY_UNAVAILABLE (SEALED_BLOB_NAME_MISMATCH)", async () => {
    const { victim, other } = await twoKeys();
    storage.swap(keyBlob(other), keyBlob(victim));
    await expectOnlyVictimUnavailable(victim, other, 'SEALED_BLOB_NAME_MISMATCH');
  });

  it('a key record sealed under another root key → KEY_UNAVAILABLE (SEALED_KEY_MISMATCH)', async () => {
    const { victim, other } = await twoKeys();
    const forged = new Sealer(OTHER_ROOT, { purpose: SEALING_PURPOSE }).seal(
      keyBlob(victim),
      99,
      unseal(storage, keyBlob(victim)),
    );
    storage.set(keyBlob(victim), forged);
    await expectOnlyVictimUnavailable(victim, other, 'SEALED_KEY_MISMATCH');
  });

  it('an authentic key record with invalid contents → KEY_UNAVAILABLE (SEALED_BLOB_CORRUPT), never half-used', async () => {
    const { victim, other } = await twoKeys();
    const record = decodeKeyRecord(unseal(storage, keyBlob(victim)), keyBlob(victim));
    const bad = encodeKeyRecord({ ...record, deletion: { scheduledAt: 1, deletionDate: 2, windowDays: 7 } }); // Enabled + deletion
    storage.set(
      keyBlob(victim),
      new Sealer(ROOT, { purpose: SEALING_PURPOSE }).seal(keyBlob(victim), 50, bad),
    );
    await expectOnlyVictimUnavailable(victim, other, 'SEALED_BLOB_CORRUPT');
  });

  it('a key record whose suite id bytes are corrupted makes only that key unavailable (not the whole keystore)', async () => {
    const { victim, other } = await twoKeys();
    storage.corrupt(keyBlob(victim), 6, 0x80); // suite id 0x0001 → 0x0081: not registered
    await expectOnlyVictimUnavailable(victim, other, 'SUITE_UNKNOWN');
  });

  it('every single-byte corruption of a key record makes only that key unavailable; the keystore still opens', async () => {
    const { victim, other } = await twoKeys();
    const original = storage.peek(keyBlob(victim))!;
    const failures: string[] = [];
    for (let i = 0; i < original.length; i++) {
      storage.set(keyBlob(victim), original);
      storage.corrupt(keyBlob(victim), i, 0x80);
      try {
        const ks = await open();
        const state = ks.list().find((k) => k.id === victim)?.state;
        if (state !== 'Unavailable') failures.push(`byte ${i}: state ${state}`);
        await ks.use(other, 'Encrypt');
      } catch (err) {
        failures.push(`byte ${i}: open threw ${(err as EkmsError).code}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('a corrupted manifest → open() throws SEALED_BLOB_CORRUPT', async () => {
    await twoKeys();
    storage.corrupt(MANIFEST_BLOB, -1);
    await rejects(open(), 'SEALED_BLOB_CORRUPT');
  });

  it('a truncated manifest → open() throws SEALED_BLOB_CORRUPT', async () => {
    await twoKeys();
    storage.truncate(MANIFEST_BLOB, 40);
    await rejects(open(), 'SEALED_BLOB_CORRUPT');
  });

  it('every single-byte corruption of the manifest makes open() throw a SEALED_* code (SUITE_UNKNOWN for the suite id)', async () => {
    await twoKeys();
    const original = storage.peek(MANIFEST_BLOB)!;
    const codes = new Set<string>();
    const failures: string[] = [];
    for (let i = 0; i < original.length; i++) {
      storage.set(MANIFEST_BLOB, original);
      storage.corrupt(MANIFEST_BLOB, i, 0x80);
      try {
        await open();
        failures.push(`byte ${i}: opened`);
      } catch (err) {
        const code = (err as EkmsError).code;
        codes.add(code);
        const suiteField = i === 5 || i === 6;
        if (!(code in SEALED_ERROR_CODES) && !(suiteField && code === 'SUITE_UNKNOWN')) {
          failures.push(`byte ${i}: ${code}`);
        }
      }
    }
    expect(failures).toEqual([]);
    expect(codes.has('SEALED_BLOB_CORRUPT')).toBe(true);
    expect(codes.has('SEALED_KEY_MISMATCH')).toBe(true);
  });

  it('a key record served as the manifest → open() throws SEALED_BLOB_NAME_MISMATCH', async () => {
    const { victim } = await twoKeys();
    storage.swap(keyBlob(victim), MANIFEST_BLOB);
    await rejects(open(), 'SEALED_BLOB_NAME_MISMATCH');
  });

  it('an authentic manifest with an unknown version or invalid contents → SEALED_VERSION_UNSUPPORTED / SEALED_BLOB_CORRUPT', async () => {
    const { victim } = await twoKeys();
    const sealer = new Sealer(ROOT, { purpose: SEALING_PURPOSE });
    storage.set(MANIFEST_BLOB, sealer.seal(MANIFEST_BLOB, 100, encodeCbor({ v: 2, keys: [], aliases: [] })));
    await rejects(open(), 'SEALED_VERSION_UNSUPPORTED');
    const dangling = encodeCbor({
      v: 1,
      keys: [[victim, 1]],
      aliases: [['alias/x', '22222222-2222-4222-8222-222222222222']],
    });
    storage.set(MANIFEST_BLOB, sealer.seal(MANIFEST_BLOB, 101, dangling));
    await rejects(open(), 'SEALED_BLOB_CORRUPT', /alias target/);
    storage.set(
      MANIFEST_BLOB,
      sealer.seal(MANIFEST_BLOB, 102, encodeCbor({ v: 1, keys: [['KEY', 1]], aliases: [] })),
    );
    await rejects(open(), 'SEALED_BLOB_CORRUPT');
  });

  it('a different root key → open() throws SEALED_KEY_MISMATCH', async () => {
    await twoKeys();
    await rejects(open({ root: OTHER_ROOT }), 'SEALED_KEY_MISMATCH');
  });

  it('manifest missing while key records exist → open() throws SEALED_BLOB_ROLLBACK (no silently empty keystore)', async () => {
    await twoKeys();
    storage.drop(MANIFEST_BLOB);
    await rejects(open(), 'SEALED_BLOB_ROLLBACK', /manifest is missing/);
  });

  it('manifest missing and only the root key blob present → an empty keystore', async () => {
    await loadSimulationRootKey(storage, () => clock.now);
    const ks = await open();
    expect(ks.size).toBe(0);
  });

  it('documented limit (docs/sealed-state.md §5): an older authentic manifest at start-up is accepted', async () => {
    const ks = await open();
    const first = await ks.create(basic);
    const snapshot = storage.snapshot();
    const second = await ks.create(basic);
    await ks.setAlias('alias/second', second.id, false);
    // The host rolls the whole store back to an earlier run: nothing inside the enclave can tell.
    storage.restoreSnapshot(snapshot);
    const again = await open();
    expect(again.list()).toEqual([{ id: first.id, state: 'Enabled' }]);
    await rejects(again.get(second.id), 'KEY_NOT_FOUND');
    // Only the manifest rolled back (key records current): the later key's record is an orphan, ignored.
    storage.restoreSnapshot(snapshot);
    storage.set(keyBlob(second.id), storage.history(keyBlob(second.id))[0]!);
    expect((await open()).size).toBe(1);
  });
});

// ------------------------------------------------------------------------------------------------ root key

describe('simulation root key (root-key.ts)', () => {
  it('is created only on an empty store, marked insecure, and loaded unchanged afterwards', async () => {
    const first = await loadSimulationRootKey(storage, () => clock.now);
    expect(first.created).toBe(true);
    expect(first.source).toBe('insecure-simulation');
    expect(first.key).toHaveLength(32);
    const raw = decodeCbor(storage.peek(SIMULATION_ROOT_KEY_BLOB)!) as Record<string, unknown>;
    expect(raw['marker']).toBe(SIMULATION_MARKER);
    expect(raw['createdAt']).toBe(new Date(T0).toISOString());
    const second = await loadSimulationRootKey(storage, () => clock.now);
    expect(second.created).toBe(false);
    expect(hex(second.key)).toBe(hex(first.key));
    expect(storage.putsOf(SIMULATION_ROOT_KEY_BLOB)).toBe(1);
  });

  it('opens the same keystore through a reloaded root key', async () => {
    const root = await loadSimulationRootKey(storage, () => clock.now);
    const ks = await Keystore.open({ storage, rootKey: root.key, now: () => clock.now });
    const r = await ks.create(basic);
    root.key.fill(0); // the caller zeroes it after opening (enclave/main.ts)
    expect((await ks.use(r.id, 'Encrypt')).id).toBe(r.id);
    const again = await loadSimulationRootKey(storage, () => clock.now);
    const ks2 = await Keystore.open({ storage, rootKey: again.key, now: () => clock.now });
    expect(view(await ks2.get(r.id))).toEqual(view(await ks.get(r.id)));
  });

  it('missing while sealed state exists → ROOT_KEY_UNAVAILABLE, and no new root key is written', async () => {
    await loadSimulationRootKey(storage, () => clock.now);
    await (await open()).create(basic);
    storage.drop(SIMULATION_ROOT_KEY_BLOB);
    const puts = storage.counts.put;
    await rejects(
      loadSimulationRootKey(storage, () => clock.now),
      'ROOT_KEY_UNAVAILABLE',
    );
    expect(storage.counts.put).toBe(puts);
    expect(storage.has(SIMULATION_ROOT_KEY_BLOB)).toBe(false);
  });

  it.each([
    ['not CBOR', Uint8Array.of(0xff, 0x00)],
    ['not a map', encodeCbor([1, 2])],
    ['another version', encodeCbor({ v: 2, marker: SIMULATION_MARKER, key: new Uint8Array(32) })],
    ['no marker', encodeCbor({ v: 1, key: new Uint8Array(32) })],
    ['another marker', encodeCbor({ v: 1, marker: 'secure', key: new Uint8Array(32) })],
    ['short key', encodeCbor({ v: 1, marker: SIMULATION_MARKER, key: new Uint8Array(31) })],
    ['key as text', encodeCbor({ v: 1, marker: SIMULATION_MARKER, key: 'a'.repeat(32) })],
  ])('malformed (%s) → ROOT_KEY_UNAVAILABLE', async (_label, bytes) => {
    storage.set(SIMULATION_ROOT_KEY_BLOB, bytes);
    await rejects(
      loadSimulationRootKey(storage, () => clock.now),
      'ROOT_KEY_UNAVAILABLE',
    );
  });

  it('a failing store write of a new root key is the store code', async () => {
    storage.failNext('put', { code: 'STORE_FULL' });
    await rejects(
      loadSimulationRootKey(storage, () => clock.now),
      'STORE_FULL',
    );
  });
});

// ------------------------------------------------------------------------------------------------ close

describe('close()', () => {
  it('zeroes every key version in memory; later uses and changes throw ENCLAVE_UNAVAILABLE', async () => {
    const ks = await open();
    const a = await ks.create(basic);
    await ks.rotate(a.id);
    const b = await ks.create({ ...basic, suite: SuiteId.XChaCha20Poly1305HkdfSha384CommitV1 });
    const held = [...(await ks.get(a.id)).versions, ...b.versions].map((v) => v.material!);
    expect(held.some(isZero)).toBe(false);
    ks.close();
    expect(held.every(isZero)).toBe(true);
    await rejects(ks.get(a.id), 'ENCLAVE_UNAVAILABLE');
    await rejects(ks.use(a.id, 'Encrypt'), 'ENCLAVE_UNAVAILABLE');
    await rejects(ks.rotate(a.id), 'ENCLAVE_UNAVAILABLE');
    await rejects(ks.create(basic), 'ENCLAVE_UNAVAILABLE');
    await rejects(ks.setAlias('alias/x', a.id, false), 'ENCLAVE_UNAVAILABLE');
    ks.close(); // idempotent
    // What was stored is intact: a new keystore opens it.
    expect((await (await open()).get(a.id)).versions).toHaveLength(2);
  });
});

// ------------------------------------------------------------------------------------------------ limits

describe('limits (shared/limits.ts, unchanged)', () => {
  /** Seals a crafted record and a manifest listing it (as the keystore would have written them). */
  function plant(records: KeyRecord[], aliases: Array<[string, string]> = [], extraIds: string[] = []) {
    const sealer = new Sealer(ROOT, { purpose: SEALING_PURPOSE });
    for (const r of records) storage.set(keyBlob(r.id), sealer.seal(keyBlob(r.id), 1, encodeKeyRecord(r)));
    const keys = new Map<string, number>([
      ...records.map((r) => [r.id, 1] as [string, number]),
      ...extraIds.map((id) => [id, 1] as [string, number]),
    ]);
    const manifest = encodeManifest({ keys, aliases: new Map(aliases) });
    expect(manifest.length).toBeLessThanOrEqual(SEALED_LIMITS.maxPlaintextBytes);
    storage.set(MANIFEST_BLOB, sealer.seal(MANIFEST_BLOB, 1, manifest));
  }
  function record(versions: number): KeyRecord {
    return {
      id: '33333333-3333-4333-8333-333333333333',
      description: 'é'.repeat(LIMITS.maxKeyDescriptionBytes / 2),
      createdAt: T0,
      suite: SuiteId.Aes256GcmHkdfSha384CommitV1,
      state: KeyState.Enabled,
      versions: Array.from({ length: versions }, (_, i) => ({
        version: i + 1,
        createdAt: T0 + i,
        material: new Uint8Array(randomBytes(32)),
      })),
      rotationPeriodDays: 1,
      nextRotationAt: T0 + DAY,
      deletion: null,
      destroyedAt: null,
      deniedUses: null,
    };
  }

  it(`maxKeyVersions (${LIMITS.maxKeyVersions}): the last rotation succeeds, the next is KEY_LIMIT_EXCEEDED, the record reloads`, async () => {
    const r = record(LIMITS.maxKeyVersions - 1);
    plant([r]);
    const ks = await open();
    expect((await ks.rotate(r.id)).versions).toHaveLength(LIMITS.maxKeyVersions);
    await rejects(ks.rotate(r.id), 'KEY_LIMIT_EXCEEDED');
    // Automatic rotation at the limit neither rotates nor fails.
    clock.now += 10 * DAY;
    expect((await ks.use(r.id, 'Encrypt')).versions).toHaveLength(LIMITS.maxKeyVersions);
    expect(await ks.sweep()).toBe(0);
    const again = await open();
    expect(again.list()).toEqual([{ id: r.id, state: 'Enabled' }]);
    expect((await again.get(r.id)).versions).toHaveLength(LIMITS.maxKeyVersions);
    // A key record at the limits, pending deletion with denied uses, also reloads.
    await again.scheduleDeletion(r.id, 7);
    await rejects(again.use(r.id, 'x'.repeat(64)), 'KEY_PENDING_DELETION');
    expect((await open()).list()).toEqual([{ id: r.id, state: 'PendingDeletion' }]);
  });

  it(`maxKeys (${LIMITS.maxKeys}): a full manifest opens and CreateKey is KEY_LIMIT_EXCEEDED`, async () => {
    const ids = Array.from(
      { length: LIMITS.maxKeys },
      (_, i) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`,
    );
    const aliases: Array<[string, string]> = Array.from({ length: LIMITS.maxAliases }, (_, i) => [
      `alias/${String(i).padStart(4, '0')}${'x'.repeat(246)}`,
      ids[i]!,
    ]);
    plant([], aliases, ids);
    const ks = await open();
    expect(ks.size).toBe(LIMITS.maxKeys);
    await rejects(ks.create(basic), 'KEY_LIMIT_EXCEEDED');
  });

  it(`maxAliases (${LIMITS.maxAliases}): a new alias is KEY_LIMIT_EXCEEDED, repointing an existing one works`, async () => {
    const r = record(1);
    const aliases: Array<[string, string]> = Array.from({ length: LIMITS.maxAliases }, (_, i) => [
      `alias/a${i}`,
      r.id,
    ]);
    plant([r], aliases);
    const ks = await open();
    expect(ks.aliases()).toHaveLength(LIMITS.maxAliases);
    await rejects(ks.setAlias('alias/one-more', r.id, false), 'KEY_LIMIT_EXCEEDED');
    await ks.setAlias('alias/a0', r.id, true);
    await ks.deleteAlias('alias/a1');
    await ks.setAlias('alias/one-more', r.id, false);
    expect((await open()).aliases()).toHaveLength(LIMITS.maxAliases);
  });
});

// ------------------------------------------------------------------------------------------------ robustness

describe('records the keystore writes can always be read back', () => {
  it('scheduleDeletion / setRotation with out-of-range numbers do not leave a record that a restart refuses', async () => {
    // The wire handlers bound these (7..30, 1..2560); the keystore API itself does not. Either it refuses
    // them, or what it stores must load again.
    const ks = await open();
    const a = await ks.create(basic);
    const b = await ks.create(basic);
    const attempts: Array<[string, () => Promise<unknown>]> = [
      ['scheduleDeletion(0)', () => ks.scheduleDeletion(a.id, 0)],
      ['setRotation(0)', () => ks.setRotation(b.id, 0)],
    ];
    for (const [, attempt] of attempts) await attempt().catch(() => undefined);
    const again = await open();
    expect(again.list().map((k) => k.state)).not.toContain('Unavailable');
  });
});
