/**
 * Error codes of the host's sealed-blob store (host/blob-store.ts; design §1; docs/sealed-state.md §6).
 *
 * The store holds opaque blobs for the enclave; its failures are about names, sizes and the filesystem, never
 * about contents. Filesystem failures carry the errno and the step in `details` (never a path outside the
 * store, never contents). Codes are stable and never renamed; each summary is one line for docs/errors.md.
 */
import { EkmsError, type ErrorSpec, registerErrorCodes } from './errors.js';

export const STORE_ERROR_CODES = {
  STORE_NAME_INVALID: {
    retriable: false,
    summary: 'A blob name is empty, too long or has characters outside [a-z0-9._-] (or starts with . _ -).',
  },
  STORE_BLOB_INVALID: { retriable: false, summary: 'A blob to store is not a byte array.' },
  STORE_BLOB_TOO_LARGE: {
    retriable: false,
    summary: 'A blob (to store, or found in the store) exceeds the maximum blob size.',
  },
  STORE_WRITE_FAILED: {
    retriable: true,
    summary:
      'The filesystem refused a write, sync, rename or delete; the blob is its previous or its new version, whole.',
  },
  STORE_READ_FAILED: {
    retriable: true,
    summary:
      'The filesystem refused to read a blob or the store directory (or the entry is not a regular file).',
  },
  STORE_FULL: {
    retriable: true,
    summary: 'The filesystem is out of space or quota; the blob is its previous or its new version, whole.',
  },
  STORAGE_UNAVAILABLE: {
    retriable: true,
    summary:
      'The enclave cannot reach the host blob store (channel down or no answer in time); nothing was acknowledged.',
  },
} as const satisfies Record<string, ErrorSpec>;

registerErrorCodes(STORE_ERROR_CODES);

export type StoreErrorCode = keyof typeof STORE_ERROR_CODES;

/** Every failure of the host blob store. */
export class StoreError extends EkmsError<StoreErrorCode> {}
