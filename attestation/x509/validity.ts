/**
 * Validity of one certificate at `now` (RFC 5280 §4.1.2.5: notBefore ≤ now ≤ notAfter, both inclusive),
 * for every chain builder (path.ts, sev-snp/chain.ts). `now` is always the caller's.
 */
import { AttestationError } from '../errors.js';
import type { ParsedCertificate } from './certificate.js';

/**
 * Throws unless `cert` is valid at `nowMs`. `what` names it in the message ("intermediate #1 certificate");
 * `details` are added to the error's details (before notBefore/notAfter and now).
 * @throws AttestationError CERT_NOT_YET_VALID, CERT_EXPIRED
 */
export function assertValidAt(
  cert: ParsedCertificate,
  nowMs: number,
  what: string,
  details: Readonly<Record<string, unknown>> = {},
): void {
  const at = new Date(nowMs).toISOString();
  /* Precondition: the certificate has begun its validity at `now`. */
  if (nowMs < cert.notBefore) {
    throw new AttestationError(
      'CERT_NOT_YET_VALID',
      `${what} is not valid before ${new Date(cert.notBefore).toISOString()} (checked at ${at})`,
      { details: { ...details, notBefore: cert.notBefore, now: nowMs } },
    );
  }
  /* Precondition: the certificate has not expired at `now`. */
  if (nowMs > cert.notAfter) {
    throw new AttestationError(
      'CERT_EXPIRED',
      `${what} expired at ${new Date(cert.notAfter).toISOString()} (checked at ${at})`,
      { details: { ...details, notAfter: cert.notAfter, now: nowMs } },
    );
  }
}
