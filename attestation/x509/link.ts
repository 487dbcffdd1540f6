/**
 * Checking issuer links (parent's key verifies child's signature) with the cache and a work bound, for
 * every chain builder: the generic path search (path.ts) and the fixed-shape SEV-SNP chain
 * (sev-snp/chain.ts).
 *
 * A verified link is taken from / recorded in the caller's `X509Cache`; a failed one is remembered for the
 * rest of the search only (failures are never cached). Every check counts toward `MAX_LINK_CHECKS`, cache
 * hits included.
 */
import { AttestationError } from '../errors.js';
import type { X509Cache } from './cache.js';
import type { ParsedCertificate } from './certificate.js';

/**
 * Link checks (issuer candidate → child) one chain search may make, cached or not. Counting cache hits too
 * matters: with every link of a hostile bag already verified, the search would otherwise enumerate every
 * simple path through it (8 same-named intermediates under one key: ~10^5 paths, about a second).
 */
export const MAX_LINK_CHECKS = 64;

/** True when `parent`'s key verifies `child`'s signature. */
export type LinkVerifier = (child: ParsedCertificate, parent: ParsedCertificate) => boolean;

/**
 * A link checker for one chain search at `nowMs` (a cached link is reused only while both certificates
 * are within their notAfter).
 * The returned function throws AttestationError CERT_CHAIN_INVALID once it is called more than
 * `MAX_LINK_CHECKS` times.
 */
export function createLinkVerifier(nowMs: number, cache: X509Cache | undefined): LinkVerifier {
  let linkChecks = 0;
  const failedLinks = new Set<string>();
  return (child, parent) => {
    linkChecks += 1;
    /* Precondition: chain building does bounded work (cache hits count: they bound the search, not only the crypto). */
    if (linkChecks > MAX_LINK_CHECKS) {
      throw new AttestationError(
        'CERT_CHAIN_INVALID',
        `path building gave up after ${MAX_LINK_CHECKS} issuer link checks`,
      );
    }
    if (cache?.hasLink(child, parent, nowMs) === true) return true;
    const key = `${child.fingerprint}>${parent.fingerprint}`;
    if (failedLinks.has(key)) return false;
    let ok = false;
    try {
      ok = child.x509.verify(parent.publicKey);
    } catch {
      ok = false;
    }
    if (ok) cache?.putLink(child, parent, nowMs);
    else failedLinks.add(key);
    return ok;
  };
}
