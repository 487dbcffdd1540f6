/**
 * An explicit, bounded cache for the SEV-SNP verifier (design §7: RSA-4096 chain checks are cheap, but
 * parsing three certificates and verifying three signatures per report is not free; cache them).
 *
 * It holds, each map bounded to `maxEntries` with least-recently-used eviction:
 * - parsed certificates, keyed by the SHA-256 of their DER (content-addressed, so always safe to reuse);
 * - the DER and fingerprint of PEM strings already decoded (strings are immutable);
 * - verified (child, parent) links, keyed by both fingerprints, with the window in which both
 *   certificates are valid: a link is reused only while `now` is inside that window, so an expired or
 *   not-yet-valid certificate is always re-checked and rejected.
 *
 * Nothing is shared between cache objects and nothing is cached implicitly: callers opt in by passing
 * one to `verifySnpReport({ cache })`. Failures are never cached.
 */
import { ConfigError } from '../../shared/errors.js';
import type { CertRecord } from './certificate.js';

/** Options of `new SnpVerifierCache()`. */
export interface SnpVerifierCacheOptions {
  /** Most entries per map (certificates, PEM strings, links). Default 256. */
  readonly maxEntries?: number;
}

/** A decoded PEM string. */
export interface DecodedPem {
  readonly der: Uint8Array;
  readonly fingerprint: string;
}

interface LinkWindow {
  readonly notBefore: number;
  readonly notAfter: number;
}

function touch<V>(map: Map<string, V>, key: string): V | undefined {
  const value = map.get(key);
  if (value !== undefined) {
    map.delete(key);
    map.set(key, value);
  }
  return value;
}

function put<V>(map: Map<string, V>, key: string, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  while (map.size > max) {
    const oldest = map.keys().next();
    if (oldest.done === true) break;
    map.delete(oldest.value);
  }
}

/** Bounded cache of parsed certificates and verified chain links; pass it to `verifySnpReport`. */
export class SnpVerifierCache {
  readonly maxEntries: number;
  readonly #certs = new Map<string, CertRecord>();
  readonly #pems = new Map<string, DecodedPem>();
  readonly #links = new Map<string, LinkWindow>();

  /** @throws ConfigError CONFIG_INVALID when maxEntries is not an integer in 1..65536. */
  constructor(options: SnpVerifierCacheOptions = {}) {
    const max = options.maxEntries ?? 256;
    if (!Number.isInteger(max) || max < 1 || max > 65_536) {
      throw new ConfigError(
        'CONFIG_INVALID',
        `SnpVerifierCache maxEntries must be an integer in 1..65536, got ${max}`,
      );
    }
    this.maxEntries = max;
  }

  /** Current number of entries in each map. */
  get size(): { readonly certificates: number; readonly pems: number; readonly links: number } {
    return { certificates: this.#certs.size, pems: this.#pems.size, links: this.#links.size };
  }

  /** Drops every entry. */
  clear(): void {
    this.#certs.clear();
    this.#pems.clear();
    this.#links.clear();
  }

  /** @internal */
  getCertificate(fingerprint: string): CertRecord | undefined {
    return touch(this.#certs, fingerprint);
  }

  /** @internal */
  putCertificate(record: CertRecord): void {
    put(this.#certs, record.fingerprint, record, this.maxEntries);
  }

  /** @internal */
  getPem(text: string): DecodedPem | undefined {
    return touch(this.#pems, text);
  }

  /** @internal */
  putPem(text: string, decoded: DecodedPem): void {
    put(this.#pems, text, decoded, this.maxEntries);
  }

  /** @internal True when the link child → parent was verified and `nowMs` is inside both validity windows. */
  hasLink(child: CertRecord, parent: CertRecord, nowMs: number): boolean {
    const window = touch(this.#links, `${child.fingerprint}>${parent.fingerprint}`);
    return window !== undefined && nowMs >= window.notBefore && nowMs <= window.notAfter;
  }

  /** @internal Records a verified link, valid while both certificates are. */
  putLink(child: CertRecord, parent: CertRecord): void {
    put(
      this.#links,
      `${child.fingerprint}>${parent.fingerprint}`,
      {
        notBefore: Math.max(child.notBefore, parent.notBefore),
        notAfter: Math.min(child.notAfter, parent.notAfter),
      },
      this.maxEntries,
    );
  }
}
