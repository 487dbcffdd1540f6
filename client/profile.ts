/**
 * The client profile (design §5): where the service is and what to trust about it. `ekms start` writes it into
 * its data dir; client commands read it from `--profile FILE`, `$EKMS_PROFILE`, or `./.ekms/profile.json`.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError } from '../shared/errors.js';

export const PROFILE_FILE = 'profile.json';
export const DEFAULT_DATA_DIR = '.ekms';

export interface Profile {
  readonly version: 1;
  /** Client endpoint: ws://HOST:PORT or unix:PATH. */
  readonly endpoint: string;
  readonly attestor: string;
  /** The trust policy for the enclave. */
  readonly trust: {
    /** Expected launch measurement (SHA-384 hex). */
    readonly measurement: string;
    /** Extra trusted roots (PEM), e.g. the simulated attestor's root. */
    readonly roots: readonly string[];
    /** Whether evidence from a simulated attestor is acceptable. */
    readonly allowSimulated: boolean;
  };
  /** The first admin identity: its Ed25519 public key (SPKI DER, hex) and the key file beside the profile. */
  readonly admin: { readonly name: string; readonly publicKey: string; readonly keyFile: string };
}

const HEX = /^[0-9a-f]*$/;

/**
 * Checks a parsed profile document.
 * @throws ConfigError PROFILE_INVALID
 */
export function parseProfile(doc: unknown, source: string): Profile {
  const bad = (what: string): never => {
    throw new ConfigError('PROFILE_INVALID', `${source}: ${what}`);
  };
  if (typeof doc !== 'object' || doc === null) return bad('not a JSON object');
  const p = doc as Record<string, unknown>;
  if (p['version'] !== 1) bad(`unsupported profile version ${String(p['version'])}`);
  if (typeof p['endpoint'] !== 'string' || !/^(wss?:\/\/|unix:)/.test(p['endpoint']))
    bad('endpoint must be ws://… or unix:…');
  if (typeof p['attestor'] !== 'string') bad('attestor must be a string');
  const t = p['trust'] as Record<string, unknown> | undefined;
  if (typeof t !== 'object' || t === null) return bad('trust is missing');
  if (typeof t['measurement'] !== 'string' || t['measurement'].length !== 96 || !HEX.test(t['measurement'])) {
    bad('trust.measurement must be 96 lowercase hex digits (SHA-384)');
  }
  if (!Array.isArray(t['roots']) || !t['roots'].every((r) => typeof r === 'string'))
    bad('trust.roots must be PEM strings');
  if (typeof t['allowSimulated'] !== 'boolean') bad('trust.allowSimulated must be a boolean');
  const a = p['admin'] as Record<string, unknown> | undefined;
  if (typeof a !== 'object' || a === null) return bad('admin is missing');
  if (
    typeof a['name'] !== 'string' ||
    typeof a['publicKey'] !== 'string' ||
    typeof a['keyFile'] !== 'string'
  ) {
    bad('admin must have name, publicKey and keyFile');
  }
  return doc as Profile;
}

/** Where the profile is: explicit path, then $EKMS_PROFILE, then ./.ekms/profile.json. */
export function profilePath(explicit?: string): string {
  return resolve(explicit ?? process.env['EKMS_PROFILE'] ?? `${DEFAULT_DATA_DIR}/${PROFILE_FILE}`);
}

/**
 * Reads and checks the profile.
 * @throws ConfigError PROFILE_NOT_FOUND, PROFILE_INVALID
 */
export function loadProfile(explicit?: string): { profile: Profile; path: string; dir: string } {
  const path = profilePath(explicit);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new ConfigError(
      'PROFILE_NOT_FOUND',
      `no client profile at ${path}: run \`ekms start\` here, or pass --profile FILE / set EKMS_PROFILE`,
    );
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new ConfigError('PROFILE_INVALID', `${path} is not valid JSON`);
  }
  return { profile: parseProfile(doc, path), path, dir: dirname(path) };
}

/**
 * What `connect` needs from a profile: the enclave trust, and the admin principal's key when its file is readable
 * (the CLI then authenticates as the admin).
 * @throws ConfigError PROFILE_INVALID when the key file exists but is not an Ed25519 private key
 */
export function profileConnectOptions(
  profile: Profile,
  dir: string,
): { trust: Profile['trust']; principal?: { publicKey: Uint8Array; privateKey: KeyObject } } {
  const keyPath = resolve(dir, profile.admin.keyFile);
  let pem: string;
  try {
    pem = readFileSync(keyPath, 'utf8');
  } catch {
    return { trust: profile.trust };
  }
  try {
    const privateKey = createPrivateKey(pem);
    if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error('not Ed25519');
    const publicKey = new Uint8Array(createPublicKey(privateKey).export({ type: 'spki', format: 'der' }));
    return { trust: profile.trust, principal: { publicKey, privateKey } };
  } catch (cause) {
    throw new ConfigError('PROFILE_INVALID', `${keyPath} is not an Ed25519 private key`, { cause });
  }
}
