/**
 * The keystore manifest (docs/key-service.md §3; docs/sealed-state.md §5): one sealed blob, `keystore.manifest`,
 * listing every key with the lowest sealed version of its record that may be loaded, and every alias.
 *
 * Why: each key lives in its own blob, and the host could drop or replay one of them. The manifest is written
 * after every change (key record first, manifest second), so on start-up the enclave knows which keys must exist
 * and how new their records must be: a missing key blob or an older one is refused (KEY_UNAVAILABLE for that key),
 * and a key blob that the manifest does not list (a CreateKey that crashed before it was acknowledged) is ignored.
 * What remains possible without a trusted monotonic counter is a consistent rollback of the whole state — the
 * manifest and every key blob together — to an earlier run (docs/sealed-state.md §5).
 *
 * Encoding: CBOR map `{ v: 1, keys: [[id, minRecordVersion]…], aliases: [[name, keyId]…] }`.
 */
import { decodeCbor, encodeCbor } from '../../shared/cbor.js';
import { SealedStateError } from '../../shared/crypto-errors.js';
import { LIMITS } from '../../shared/limits.js';
import { KEY_ID } from './key-record.js';

export const MANIFEST_BLOB = 'keystore.manifest';
const MANIFEST_VERSION = 1;
export const ALIAS_NAME = /^alias\/[A-Za-z0-9/_-]{1,250}$/;

export interface Manifest {
  /** key id → lowest acceptable sealed version of its record. */
  readonly keys: ReadonlyMap<string, number>;
  /** alias name → key id. */
  readonly aliases: ReadonlyMap<string, string>;
}

export function encodeManifest(m: Manifest): Uint8Array {
  return encodeCbor({
    v: MANIFEST_VERSION,
    keys: [...m.keys].map(([id, version]) => [id, version]),
    aliases: [...m.aliases].map(([name, id]) => [name, id]),
  });
}

function corrupt(why: string): SealedStateError {
  return new SealedStateError('SEALED_BLOB_CORRUPT', `keystore manifest is invalid: ${why}`, {
    details: { name: MANIFEST_BLOB },
  });
}

/**
 * Decodes and checks a manifest (already authenticated by the sealer).
 * @throws SealedStateError SEALED_BLOB_CORRUPT, SEALED_VERSION_UNSUPPORTED
 */
export function decodeManifest(bytes: Uint8Array): Manifest {
  let raw: unknown;
  try {
    raw = decodeCbor(bytes, {
      maxBytes: LIMITS.maxSealedBlobBytes,
      maxArrayLength: Math.max(LIMITS.maxKeys, LIMITS.maxAliases),
      maxItems: 3 * (LIMITS.maxKeys + LIMITS.maxAliases) + 16,
    });
  } catch (cause) {
    throw corrupt(`not CBOR (${(cause as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw corrupt('not a map');
  const m = raw as Record<string, unknown>;
  if (m['v'] !== MANIFEST_VERSION) {
    throw new SealedStateError('SEALED_VERSION_UNSUPPORTED', `keystore manifest version ${String(m['v'])}`);
  }
  const keysRaw = m['keys'];
  const aliasesRaw = m['aliases'];
  if (!Array.isArray(keysRaw) || keysRaw.length > LIMITS.maxKeys) throw corrupt('keys');
  if (!Array.isArray(aliasesRaw) || aliasesRaw.length > LIMITS.maxAliases) throw corrupt('aliases');
  const keys = new Map<string, number>();
  for (const e of keysRaw) {
    if (!Array.isArray(e) || e.length !== 2) throw corrupt('key entry');
    const [id, version] = e as unknown[];
    if (typeof id !== 'string' || !KEY_ID.test(id) || keys.has(id)) throw corrupt('key id');
    if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1)
      throw corrupt('key version');
    keys.set(id, version);
  }
  const aliases = new Map<string, string>();
  for (const e of aliasesRaw) {
    if (!Array.isArray(e) || e.length !== 2) throw corrupt('alias entry');
    const [name, id] = e as unknown[];
    if (typeof name !== 'string' || !ALIAS_NAME.test(name) || aliases.has(name)) throw corrupt('alias name');
    if (typeof id !== 'string' || !keys.has(id)) throw corrupt('alias target');
    aliases.set(name, id);
  }
  return { keys, aliases };
}
