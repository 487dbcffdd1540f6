/**
 * An explicit, bounded cache for certificate path validation (design §7: an ECDSA P-384 verify costs
 * ~0.45 ms; a Nitro document carries five certificates whose chain rarely changes, so re-verifying
 * four link signatures per document would cost four times the document's own signature). The Nitro and
 * the SEV-SNP verifiers both take one (`SnpVerifierCache` is this class); one cache may serve both.
 *
 * It holds three maps, each bounded to `maxEntries` with least-recently-used eviction:
 * - parsed certificates, keyed by the SHA-256 of their DER (content-addressed: always safe to reuse);
 * - decoded PEM strings (strings are immutable), so that trust anchors given as PEM are decoded once;
 * - verified links (child fingerprint, parent fingerprint). A hit skips only the signature check:
 *   names, constraints and validity at `now` are checked on every call. An entry is dropped once `now`
 *   passes the earlier notAfter of the two certificates, since neither can be used again after that.
 * Besides, a verifier may attach a value it derives from a cached certificate (`derive`, e.g. the SEV-SNP
 * verifier's decoded AMD extensions); it lives exactly as long as the certificate's record.
 *
 * Nothing is global: callers create a cache and pass it (`{ cache }`) to the functions that accept one.
 * Failures are never cached.
 */
import { ConfigError } from '../../shared/errors.js';
import type { ParsedCertificate } from './certificate.js';

/** Options of `new X509Cache()`. */
export interface X509CacheOptions {
  /** Most entries per map (certificates, PEM strings, links). Default 256. */
  readonly maxEntries?: number;
}

/** A decoded PEM string. */
export interface DecodedPem {
  readonly der: Uint8Array;
  readonly fingerprint: string;
}

/** Counters, for tests and metrics. */
export interface X509CacheStats {
  readonly certificateHits: number;
  readonly certificateMisses: number;
  readonly linkHits: number;
  readonly linkMisses: number;
  /** Links dropped because `now` passed their notAfter. */
  readonly linksExpired: number;
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

/** Bounded LRU cache of parsed certificates and verified (child, parent) signature links. */
export class X509Cache {
  readonly maxEntries: number;
  readonly #certificates = new Map<string, ParsedCertificate>();
  readonly #pems = new Map<string, DecodedPem>();
  /** Link key → last instant (ms) at which both certificates are valid. */
  readonly #links = new Map<string, number>();
  /** Values derived from cached records, by record and by the deriving module's key. */
  #derived = new WeakMap<ParsedCertificate, Map<symbol, unknown>>();
  #stats = { certificateHits: 0, certificateMisses: 0, linkHits: 0, linkMisses: 0, linksExpired: 0 };

  /** @throws ConfigError CONFIG_INVALID when maxEntries is not an integer in 1..65536. */
  constructor(options: X509CacheOptions = {}) {
    const max = options.maxEntries ?? 256;
    if (!Number.isInteger(max) || max < 1 || max > 65_536) {
      throw new ConfigError(
        'CONFIG_INVALID',
        `X509Cache maxEntries must be an integer in 1..65536, got ${max}`,
      );
    }
    this.maxEntries = max;
  }

  /** Current number of entries in each map. */
  get size(): { readonly certificates: number; readonly pems: number; readonly links: number } {
    return { certificates: this.#certificates.size, pems: this.#pems.size, links: this.#links.size };
  }

  /** A snapshot of the hit/miss counters. */
  get stats(): X509CacheStats {
    return { ...this.#stats };
  }

  /** Drops every entry and resets the counters. */
  clear(): void {
    this.#certificates.clear();
    this.#pems.clear();
    this.#links.clear();
    this.#derived = new WeakMap();
    this.#stats = { certificateHits: 0, certificateMisses: 0, linkHits: 0, linkMisses: 0, linksExpired: 0 };
  }

  /** @internal A parsed certificate by DER fingerprint. */
  getCertificate(fingerprint: string): ParsedCertificate | undefined {
    const hit = touch(this.#certificates, fingerprint);
    if (hit === undefined) this.#stats.certificateMisses += 1;
    else this.#stats.certificateHits += 1;
    return hit;
  }

  /** @internal */
  putCertificate(certificate: ParsedCertificate): void {
    put(this.#certificates, certificate.fingerprint, certificate, this.maxEntries);
  }

  /**
   * @internal The value `compute` derives from `certificate` (a record this cache returned), computed once
   * per record and `key`. A value is a pure function of the certificate's DER; a throw is not remembered.
   */
  derive<T>(certificate: ParsedCertificate, key: symbol, compute: () => T): T {
    let values = this.#derived.get(certificate);
    if (values?.has(key) === true) return values.get(key) as T;
    const value = compute();
    if (values === undefined) {
      values = new Map();
      this.#derived.set(certificate, values);
    }
    values.set(key, value);
    return value;
  }

  /** @internal */
  getPem(text: string): DecodedPem | undefined {
    return touch(this.#pems, text);
  }

  /** @internal */
  putPem(text: string, decoded: DecodedPem): void {
    put(this.#pems, text, decoded, this.maxEntries);
  }

  /**
   * @internal True when `parent`'s key was already found to verify `child`'s signature and both
   * certificates are still within their notAfter at `nowMs`; a stale entry is dropped.
   */
  hasLink(child: ParsedCertificate, parent: ParsedCertificate, nowMs: number): boolean {
    const key = `${child.fingerprint}>${parent.fingerprint}`;
    const notAfter = touch(this.#links, key);
    if (notAfter === undefined) {
      this.#stats.linkMisses += 1;
      return false;
    }
    if (nowMs > notAfter) {
      this.#links.delete(key);
      this.#stats.linksExpired += 1;
      this.#stats.linkMisses += 1;
      return false;
    }
    this.#stats.linkHits += 1;
    return true;
  }

  /** @internal Records a verified link (never a failed one), unless one of the two has already expired at `nowMs`. */
  putLink(child: ParsedCertificate, parent: ParsedCertificate, nowMs: number): void {
    const notAfter = Math.min(child.notAfter, parent.notAfter);
    if (nowMs > notAfter) return;
    put(this.#links, `${child.fingerprint}>${parent.fingerprint}`, notAfter, this.maxEntries);
  }
}
