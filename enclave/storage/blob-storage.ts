/**
 * The enclave's view of persistent storage: opaque named blobs kept by the untrusted host
 * (shared/storage-protocol.ts). Everything stored through it is sealed first (enclave/sealing.ts); everything
 * read back is authenticated before use. Implementations: `StorageClient` (the channel to the host) and, in
 * tests, an in-memory store with fault injection.
 */
export interface BlobStorage {
  /** The blob, or undefined if the host has none of that name. */
  get(name: string): Promise<Uint8Array | undefined>;
  /** Stores a blob atomically (previous or new version, whole). */
  put(name: string, bytes: Uint8Array): Promise<void>;
  /** Deletes a blob; false if there was none. */
  delete(name: string): Promise<boolean>;
  /** Every blob name, sorted. */
  list(): Promise<string[]>;
}
