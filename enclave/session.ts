/**
 * The enclave's end of the attested session (design §3; shared/session.ts has the bytes).
 *
 * - `EnclaveIdentity`: the per-boot Ed25519 identity key (generated inside the enclave at start, never stored) and
 *   the attestation evidence that binds it, refreshed before it ages (a Nitro leaf certificate lives ~3 hours).
 * - `acceptSession(clientHello)`: answers one ClientHello: picks the suite, encapsulates to the client's X-Wing
 *   share, signs the transcript, derives the record keys. The X-Wing shared secret is zeroed once the keys exist.
 */
import { generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';
import {
  chooseSuite,
  decodeClientHello,
  deriveSessionKeys,
  destroySessionKeys,
  type EvidenceBundle,
  ed25519Raw,
  encodeServerHello,
  encodeServerHelloBody,
  identityBinding,
  RecordProtector,
  signTranscript,
  transcriptHash,
} from '../shared/session.js';
import { SessionError } from '../shared/session-errors.js';
import { xwingEncapsulate } from '../shared/xwing.js';
import type { Attestor } from './attestor/attestor.js';

/** Evidence is renewed when older than this (well inside a Nitro leaf's ~3 hour validity). */
export const EVIDENCE_REFRESH_MS = 30 * 60 * 1000;

export class EnclaveIdentity {
  readonly #key: KeyObject;
  readonly publicKey: Uint8Array;
  readonly #attestor: Attestor;
  readonly #now: () => number;
  #evidence: { bundle: EvidenceBundle; at: number } | undefined;
  #pending: Promise<EvidenceBundle> | undefined;

  constructor(attestor: Attestor, now: () => number) {
    this.#key = generateKeyPairSync('ed25519').privateKey;
    this.publicKey = ed25519Raw(this.#key);
    this.#attestor = attestor;
    this.#now = now;
  }

  /**
   * Evidence binding this identity: cached, renewed after EVIDENCE_REFRESH_MS. A renewal that fails keeps the
   * cached evidence in service (clients judge its age themselves) and is retried by the next call; only when there
   * is no evidence at all does the attestor's error surface.
   */
  evidence(): Promise<EvidenceBundle> {
    const now = this.#now();
    const cached = this.#evidence;
    if (cached !== undefined && now - cached.at < EVIDENCE_REFRESH_MS) {
      return Promise.resolve(cached.bundle);
    }
    this.#pending ??= this.#attestor
      .evidence(identityBinding(this.publicKey), this.publicKey, new Date(now))
      .then(
        (bundle) => {
          this.#evidence = { bundle, at: now };
          return bundle;
        },
        (err: unknown) => {
          /* Precondition: a failed renewal does not take down handshakes while the cached evidence exists. */
          if (this.#evidence !== undefined) return this.#evidence.bundle;
          throw err;
        },
      )
      .finally(() => {
        this.#pending = undefined;
      });
    return this.#pending;
  }

  /** Signs the handshake transcript. */
  signTranscript(th: Uint8Array): Uint8Array {
    return signTranscript(this.#key, th);
  }

  /** Signs a release statement (kms/release.ts): "ekms-release-v1" ‖ digest. */
  signStatement(content: Uint8Array): Uint8Array {
    return new Uint8Array(sign(null, content, this.#key));
  }
}

/** An established session: the record protectors of both directions and the binder. */
export interface ServerSession {
  readonly suite: string;
  readonly receive: RecordProtector;
  readonly send: RecordProtector;
  /** Secret shared with the client only: what principals sign and workloads bind (shared/session.ts). */
  readonly binder: Uint8Array;
  destroy(): void;
}

/**
 * Answers a ClientHello.
 * @throws SessionError SESSION_HANDSHAKE_INVALID, SESSION_SUITE_UNSUPPORTED; EkmsError PROTOCOL_VERSION_UNSUPPORTED
 */
export async function acceptSession(
  identity: EnclaveIdentity,
  clientHello: Uint8Array,
): Promise<{ reply: Uint8Array; session: ServerSession }> {
  const hello = decodeClientHello(clientHello);
  const suite = chooseSuite(hello.suites);
  const evidence = await identity.evidence();
  let encapsulation: { sharedSecret: Uint8Array; ciphertext: Uint8Array };
  try {
    encapsulation = xwingEncapsulate(hello.share);
  } catch (cause) {
    throw new SessionError(
      'SESSION_HANDSHAKE_INVALID',
      'the client key share is not a valid X-Wing public key',
      {
        cause,
      },
    );
  }
  try {
    const body = encodeServerHelloBody({
      suite,
      nonce: new Uint8Array(randomBytes(32)),
      ct: encapsulation.ciphertext,
      identity: identity.publicKey,
      evidence,
    });
    const th = transcriptHash(clientHello, body);
    const reply = encodeServerHello(body, identity.signTranscript(th));
    const keys = deriveSessionKeys(encapsulation.sharedSecret, th);
    const session: ServerSession = {
      suite,
      receive: new RecordProtector(keys.c2sKey, keys.c2sIv),
      send: new RecordProtector(keys.s2cKey, keys.s2cIv),
      binder: Uint8Array.from(keys.binder),
      destroy() {
        this.receive.destroy();
        this.send.destroy();
        this.binder.fill(0);
      },
    };
    destroySessionKeys(keys);
    return { reply, session };
  } finally {
    encapsulation.sharedSecret.fill(0);
  }
}
