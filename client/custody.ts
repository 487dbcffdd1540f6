/**
 * The custodian's side of root-key custody (docs/custody.md): key files, and the unlock — fetch the bundle through
 * the attested session, verify it, decrypt this custodian's share locally, submit it inside the session.
 *
 * What the custodian trusts, and checks before its share leaves this process:
 * 1. the enclave it talks to: the SDK's attested session (client/session.ts) checks its evidence, measurement,
 *    debug flag and identity binding against the profile's trust — the share is sent only inside that session's
 *    records, which the host cannot open;
 * 2. the bundle: signed by the provisioning enclave's identity key, whose evidence must chain to a trusted root
 *    and carry the profile's measurement (attestation/custody-evidence.ts) — so a host cannot make custodians
 *    release shares of a root key it chose (on hardware; in simulation the host holds the simulated CA);
 * 3. no rollback: the key directory remembers the highest bundle generation seen for each root key (`pins.json`)
 *    and refuses an older one (a bundle replayed after a re-split);
 * 4. the share itself: it decrypts under this custodian's key with the bundle's HPKE info and matches its
 *    commitment.
 * The decrypted share is zeroed once sent (or refused).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { verifyBundleEvidence } from '../attestation/custody-evidence.js';
import {
  type CustodyBundle,
  custodianFingerprint,
  decodeBundle,
  shareCommitment,
  shareInfo,
} from '../shared/custody.js';
import { CustodyError } from '../shared/custody-errors.js';
import { ConfigError, EkmsError } from '../shared/errors.js';
import { hpkeOpen } from '../shared/hpke.js';
import { XWING, xwingKeygen, xwingPublicKey } from '../shared/xwing.js';
import type { EkmsClient } from './sdk.js';
import type { EnclaveTrust } from './session.js';

export const CUSTODIAN_KEY_FILE = 'custodian.key';
export const CUSTODIAN_PUBLIC_FILE = 'custodian.pub.json';
const PINS_FILE = 'pins.json';
const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

export interface CustodianPublic {
  readonly version: 1;
  readonly name: string;
  /** X-Wing public key, lowercase hex (1216 bytes). */
  readonly publicKey: string;
  /** SHA-256 of the public key, hex: compare it out of band when assembling the custodians file. */
  readonly fingerprint: string;
}

export interface CustodianKey {
  readonly name: string;
  /** X-Wing secret key (32-byte seed); the caller zeroes it. */
  readonly secretKey: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly dir: string;
}

function writeExclusive(path: string, data: string, mode: number): void {
  writeFileSync(path, data, { mode, flag: 'wx' });
  chmodSync(path, mode);
}

/**
 * `ekms custody keygen`: a new custodian key in `dir` (created 0700): `custodian.key` (the X-Wing seed, hex,
 * mode 0600, never overwritten) and `custodian.pub.json` (name, public key, fingerprint) to hand to the operator.
 * @throws ConfigError USAGE_ERROR (bad name, key exists), IO_ERROR
 */
export function generateCustodianKey(dir: string, name: string): CustodianPublic & { dir: string } {
  /* Precondition: a custodian name follows the principal name rule. */
  if (!NAME.test(name)) throw new ConfigError('USAGE_ERROR', '--name must be 1..64 of [A-Za-z0-9._@-]');
  const d = resolve(dir);
  const keyPath = join(d, CUSTODIAN_KEY_FILE);
  /* Precondition: an existing custodian key is never overwritten (its share would be lost). */
  if (existsSync(keyPath))
    throw new ConfigError('USAGE_ERROR', `${keyPath} exists; refusing to overwrite it`);
  const { secretKey, publicKey } = xwingKeygen();
  try {
    mkdirSync(d, { recursive: true, mode: 0o700 });
    writeExclusive(
      keyPath,
      `${JSON.stringify({ version: 1, name, xwingSecretKey: Buffer.from(secretKey).toString('hex') })}\n`,
      0o600,
    );
    const pub: CustodianPublic = {
      version: 1,
      name,
      publicKey: Buffer.from(publicKey).toString('hex'),
      fingerprint: custodianFingerprint(publicKey),
    };
    writeFileSync(join(d, CUSTODIAN_PUBLIC_FILE), `${JSON.stringify(pub, null, 2)}\n`, { mode: 0o644 });
    return { ...pub, dir: d };
  } catch (err) {
    if (err instanceof EkmsError) throw err;
    throw new ConfigError('IO_ERROR', `cannot write the custodian key into ${d}`, { cause: err });
  } finally {
    secretKey.fill(0);
  }
}

/**
 * Reads a custodian key directory.
 * @throws ConfigError CONFIG_INVALID (malformed, or readable by others), IO_ERROR
 */
export function loadCustodianKey(dir: string): CustodianKey {
  const d = resolve(dir);
  const path = join(d, CUSTODIAN_KEY_FILE);
  let text: string;
  try {
    /* Precondition: the key file is private to its owner (as ssh does for private keys). */
    if ((statSync(path).mode & 0o077) !== 0) {
      throw new ConfigError('CONFIG_INVALID', `${path} is accessible by others; chmod 600 it`);
    }
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof EkmsError) throw err;
    throw new ConfigError('IO_ERROR', `cannot read the custodian key ${path}`, { cause: err });
  }
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(text) as Record<string, unknown>;
  } catch (cause) {
    throw new ConfigError('CONFIG_INVALID', `${path} is not a custodian key`, { cause });
  }
  const hex = doc['xwingSecretKey'];
  const name = doc['name'];
  if (
    doc['version'] !== 1 ||
    typeof name !== 'string' ||
    typeof hex !== 'string' ||
    !/^[0-9a-f]{64}$/.test(hex)
  ) {
    throw new ConfigError('CONFIG_INVALID', `${path} is not a custodian key`);
  }
  const secretKey = new Uint8Array(Buffer.from(hex, 'hex'));
  return { name, secretKey, publicKey: xwingPublicKey(secretKey), dir: d };
}

interface Pin {
  generation: number;
  setDigest: string;
}

function readPins(dir: string): Record<string, Pin> {
  const path = join(dir, PINS_FILE);
  if (!existsSync(path)) return {};
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, Pin>;
  } catch (cause) {
    throw new ConfigError('CONFIG_INVALID', `${path} is not valid JSON`, { cause });
  }
}

/**
 * Refuses a bundle older than one this custodian already served for the same root key; records the newest.
 * @throws CustodyError CUSTODY_INVALID (details.reason `rollback`)
 */
function checkAndPin(dir: string, bundle: CustodyBundle): void {
  const pins = readPins(dir);
  const keyCheck = Buffer.from(bundle.body.keyCheck).toString('hex');
  const setDigest = Buffer.from(bundle.body.setDigest).toString('hex');
  const pin = pins[keyCheck];
  /* Precondition: no older generation of a bundle this custodian has seen (replay after a re-split). */
  if (
    pin !== undefined &&
    (bundle.body.generation < pin.generation ||
      (bundle.body.generation === pin.generation && pin.setDigest !== setDigest))
  ) {
    throw new CustodyError(
      'CUSTODY_INVALID',
      `the custody bundle is generation ${bundle.body.generation}; this custodian already served generation ${pin.generation} of this root key`,
      { details: { reason: 'rollback' } },
    );
  }
  pins[keyCheck] = { generation: bundle.body.generation, setDigest };
  const path = join(dir, PINS_FILE);
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(pins, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
}

/** What `custodyStatus` says. */
export interface CustodyStatusResult {
  readonly locked: boolean;
  readonly threshold: number;
  readonly custodians: readonly string[];
  readonly held: readonly number[];
  readonly keyCheck: string;
  readonly setDigest: string;
  readonly generation: number;
}

/** Asks the enclave for its custody status (inside the attested session). */
export async function custodyStatus(client: EkmsClient): Promise<CustodyStatusResult> {
  const r = await client.request('custodyStatus');
  return r as unknown as CustodyStatusResult;
}

export interface UnlockResult {
  /** False when the enclave was not locked (nothing was sent). */
  readonly submitted: boolean;
  readonly custodian: string;
  readonly index: number | null;
  readonly held: number;
  readonly threshold: number;
  readonly unlocked: boolean;
  readonly keyCheck: string;
  readonly generation: number;
}

/**
 * `ekms custody unlock`: verifies the bundle, decrypts this custodian's share and submits it over `client`'s
 * attested session (the client must have been opened with the profile's trust; it need not be authenticated).
 * @throws CustodyError CUSTODY_INVALID (bundle unsigned, untrusted, rolled back, not for this custodian, share does
 *   not decrypt or match its commitment), CUSTODY_SHARE_INVALID (the enclave refused the share); session and
 *   transport errors of the SDK
 */
export async function custodyUnlock(
  client: EkmsClient,
  key: CustodianKey,
  trust: EnclaveTrust,
  now: () => number = Date.now,
): Promise<UnlockResult> {
  const status = await custodyStatus(client);
  if (!status.locked) {
    return {
      submitted: false,
      custodian: key.name,
      index: null,
      held: 0,
      threshold: status.threshold,
      unlocked: true,
      keyCheck: status.keyCheck,
      generation: status.generation,
    };
  }
  const raw = (await client.request('custodyGetBundle'))['bundle'];
  if (!(raw instanceof Uint8Array))
    throw new CustodyError('CUSTODY_INVALID', 'the enclave sent no custody bundle');
  const bundle = decodeBundle(raw);
  verifyBundleEvidence(bundle, {
    measurement: trust.measurement,
    extraRoots: trust.roots,
    allowSimulated: trust.allowSimulated,
    ...(trust.allowDebug === undefined ? {} : { allowDebug: trust.allowDebug }),
    now: new Date(now()),
  });
  const body = bundle.body;
  const position = body.set.custodians.findIndex(
    (c) =>
      c.publicKey.length === XWING.publicKeyBytes &&
      Buffer.from(c.publicKey).equals(Buffer.from(key.publicKey)),
  );
  /* Precondition: this custodian's key is in the bundle's custody set. */
  if (position < 0) {
    throw new CustodyError(
      'CUSTODY_INVALID',
      `custodian key ${custodianFingerprint(key.publicKey).slice(0, 16)}… is not in this custody set`,
      { details: { reason: 'not-a-custodian' } },
    );
  }
  checkAndPin(key.dir, bundle);
  const index = position + 1;
  const entry = body.shares[position]!;
  let share: Uint8Array | undefined;
  try {
    try {
      share = hpkeOpen(key.secretKey, entry.enc, shareInfo(body, index), new Uint8Array(0), entry.ciphertext);
    } catch (cause) {
      throw new CustodyError('CUSTODY_INVALID', 'this custodian’s share does not decrypt under its key', {
        cause,
        details: { reason: 'share-decrypt' },
      });
    }
    /* Precondition: the decrypted share matches its commitment (the enclave checks again). */
    if (!Buffer.from(shareCommitment(body.salt, index, share)).equals(Buffer.from(entry.commitment))) {
      throw new CustodyError('CUSTODY_INVALID', 'the decrypted share does not match its commitment', {
        details: { reason: 'commitment' },
      });
    }
    const r = await client.request('custodySubmitShare', { index, share });
    return {
      submitted: true,
      custodian: key.name,
      index,
      held: r['held'] as number,
      threshold: r['threshold'] as number,
      unlocked: r['unlocked'] === true,
      keyCheck: Buffer.from(body.keyCheck).toString('hex'),
      generation: body.generation,
    };
  } finally {
    share?.fill(0);
  }
}
