/**
 * The envelope suite's default message sizes and the labels its row ids use (`envelope.<op>.<label>.stream`), shared
 * by bench/envelope.ts and the envelope target's expected rows (bench/targets.ts) so that the two cannot drift apart.
 */
const MiB = 1024 * 1024;

/** Sizes the envelope suite runs when none are given, largest first. */
export const ENVELOPE_DEFAULT_SIZES: readonly number[] = [64 * MiB, MiB];

/** A size as it appears in a row id: `1MiB`, `64MiB`, `4KiB`. */
export function sizeLabel(bytes: number): string {
  return bytes >= MiB ? `${bytes / MiB}MiB` : `${bytes / 1024}KiB`;
}
