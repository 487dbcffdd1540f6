/**
 * The client's end of the attested session (design §3; shared/session.ts has the bytes; docs/protocol.md §5).
 *
 * Before anything is sent the client checks the enclave: the evidence chains to a trusted root (the embedded
 * vendor roots, plus the profile's roots, which count as simulated), is not from a debug enclave, carries the
 * expected measurement, is fresh enough (Nitro: signed timestamp), and binds the identity key that signed this
 * handshake's transcript. Any failure ends the connection with ENCLAVE_NOT_TRUSTED (or the handshake code), and
 * the reason names the check.
 */
import { randomBytes } from 'node:crypto';
import type { Claims } from '../attestation/claims.js';
import { verifyEvidenceBundle } from '../attestation/evidence.js';
import { X509Cache } from '../attestation/x509/index.js';
import { EkmsError } from '../shared/errors.js';
import {
  decodeServerHello,
  deriveSessionKeys,
  destroySessionKeys,
  encodeClientHello,
  identityBinding,
  RecordProtector,
  SUPPORTED_SESSION_SUITES,
  transcriptHash,
  verifyTranscriptSignature,
} from '../shared/session.js';
import { SessionError } from '../shared/session-errors.js';
import { XWingDecapsulationKey, xwingKeygen } from '../shared/xwing.js';

/** What the client trusts about the enclave (the profile's `trust`). */
export interface EnclaveTrust {
  /** Expected launch measurement (SHA-384, 96 lowercase hex digits): Nitro PCR0, SNP MEASUREMENT. */
  readonly measurement: string;
  /** Extra roots (PEM) beyond the embedded AWS/AMD roots; they count as simulated. */
  readonly roots: readonly string[];
  /** Accept evidence anchored at a simulated root (only for simulation). */
  readonly allowSimulated: boolean;
  /** Accept a debug enclave (never in production; default false). */
  readonly allowDebug?: boolean;
  /** Oldest acceptable evidence (Nitro `timestamp`), default 2 hours (the enclave renews it every 30 minutes). */
  readonly maxEvidenceAgeMs?: number;
}

export const DEFAULT_MAX_EVIDENCE_AGE_MS = 2 * 60 * 60 * 1000;
const CLOCK_SKEW_MS = 60_000;

/** A client handshake in progress: the ClientHello to send, then `finish(serverHello)`. */
export interface ClientHandshake {
  readonly clientHello: Uint8Array;
  /**
   * Checks the ServerHello and derives the session.
   * @throws SessionError (SESSION_*, ENCLAVE_NOT_TRUSTED); EkmsError PROTOCOL_VERSION_UNSUPPORTED
   */
  finish(serverHello: Uint8Array): ClientSession;
  /** Zeroes the ephemeral key if the handshake is abandoned. */
  abort(): void;
}

export interface ClientSession {
  readonly send: RecordProtector;
  readonly receive: RecordProtector;
  readonly binder: Uint8Array;
  /** The enclave's verified claims. */
  readonly claims: Claims;
  /**
   * The enclave's per-boot Ed25519 identity key (32 bytes) that its evidence binds and that signed this handshake:
   * the key `openRelease` verifies release statements with (SEV-SNP claims carry no public key).
   */
  readonly identity: Uint8Array;
  destroy(): void;
}

const shared = new X509Cache();

function notTrusted(reason: string, message: string, cause?: unknown): SessionError {
  return new SessionError('ENCLAVE_NOT_TRUSTED', `the enclave is not trusted: ${message}`, {
    details: { reason },
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * Checks the enclave's claims against the trust policy and the identity binding.
 * @throws SessionError ENCLAVE_NOT_TRUSTED
 */
export function checkEnclaveClaims(
  claims: Claims,
  identity: Uint8Array,
  trust: EnclaveTrust,
  now: number,
): void {
  /* Precondition: a simulated root is trusted only when the profile says so. */
  if (claims.simulated && !trust.allowSimulated) {
    throw notTrusted('SIMULATED_NOT_ALLOWED', 'its evidence is anchored at a simulated root');
  }
  /* Precondition: debug enclaves are refused unless explicitly allowed (their memory is readable by the host). */
  if (claims.debug && trust.allowDebug !== true)
    throw notTrusted('DEBUG_NOT_ALLOWED', 'it is a debug enclave');
  /* Precondition: the measurement is the expected one (a changed enclave bundle is refused). */
  if (claims.measurement !== trust.measurement) {
    throw notTrusted(
      'MEASUREMENT_NOT_ALLOWED',
      `measurement ${claims.measurement.slice(0, 16)}… is not the expected ${trust.measurement.slice(0, 16)}…`,
    );
  }
  const binding = Buffer.from(identityBinding(identity)).toString('hex');
  if (claims.type === 'nitro') {
    /* Precondition: Nitro evidence binds the identity key (user_data = its binding digest) and is fresh enough. */
    if (claims.userData !== binding || claims.publicKey !== Buffer.from(identity).toString('hex')) {
      throw notTrusted('BINDING_MISMATCH', 'its evidence does not bind the key that signed this handshake');
    }
    const at = claims.timestamp === null ? Number.NaN : Date.parse(claims.timestamp);
    const maxAge = trust.maxEvidenceAgeMs ?? DEFAULT_MAX_EVIDENCE_AGE_MS;
    if (!(at <= now + CLOCK_SKEW_MS))
      throw notTrusted('EVIDENCE_FROM_FUTURE', 'its evidence is dated in the future');
    if (now - at > maxAge) throw notTrusted('EVIDENCE_TOO_OLD', `its evidence is older than ${maxAge} ms`);
  } else if (claims.reportData !== binding + '0'.repeat(64)) {
    /* Precondition: SNP evidence binds the identity key (REPORT_DATA = binding digest ‖ 32 zero bytes). */
    throw notTrusted('BINDING_MISMATCH', 'its report does not bind the key that signed this handshake');
  }
}

/** Starts a handshake: a fresh ephemeral X-Wing key and nonce. */
export function startClientHandshake(trust: EnclaveTrust, now: () => number = Date.now): ClientHandshake {
  const { secretKey, publicKey } = xwingKeygen();
  const decaps = XWingDecapsulationKey.fromSecretKey(secretKey);
  secretKey.fill(0);
  const nonce = new Uint8Array(randomBytes(32));
  const clientHello = encodeClientHello({ suites: SUPPORTED_SESSION_SUITES, nonce, share: publicKey });
  return {
    clientHello,
    abort: () => decaps.destroy(),
    finish(serverHello) {
      try {
        const { body, bodyBytes, sig } = decodeServerHello(serverHello);
        /* Precondition: the enclave chose one of the suites we offered. */
        if (!(SUPPORTED_SESSION_SUITES as readonly string[]).includes(body.suite)) {
          throw new SessionError(
            'SESSION_SUITE_UNSUPPORTED',
            `the enclave chose a suite we did not offer: ${body.suite}`,
          );
        }
        const t = now();
        let claims: Claims;
        try {
          claims = verifyEvidenceBundle(body.evidence, {
            now: new Date(t),
            extraRoots: trust.roots,
            cache: shared,
          });
        } catch (err) {
          const code = err instanceof EkmsError ? err.code : 'INTERNAL_ERROR';
          throw notTrusted(code, `its evidence does not verify (${code})`, err);
        }
        checkEnclaveClaims(claims, body.identity, trust, t);
        const th = transcriptHash(clientHello, bodyBytes);
        verifyTranscriptSignature(body.identity, th, sig);
        const ss = decaps.decapsulate(body.ct);
        const keys = deriveSessionKeys(ss, th);
        ss.fill(0);
        const session: ClientSession = {
          send: new RecordProtector(keys.c2sKey, keys.c2sIv),
          receive: new RecordProtector(keys.s2cKey, keys.s2cIv),
          binder: Uint8Array.from(keys.binder),
          claims,
          identity: Uint8Array.from(body.identity),
          destroy() {
            this.send.destroy();
            this.receive.destroy();
            this.binder.fill(0);
          },
        };
        destroySessionKeys(keys);
        return session;
      } finally {
        decaps.destroy();
      }
    },
  };
}
