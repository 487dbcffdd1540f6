/**
 * Benchmark: streaming envelope encryption (client/envelope-stream.ts) against raw node:crypto AES-256-GCM, measured
 * in the same run (style: each figure next to its baseline; target ratio ≥ 0.9).
 *
 * Two pairs per size (1 MiB and 64 MiB), the input always in 64 KiB pieces (like `fs.createReadStream`), default
 * 64 KiB chunks, MB = 10^6 bytes:
 * - `envelope.<op>.core.<size>`: the sans-IO EnvelopeEncryptor / EnvelopeDecryptor (HKDF, header, one cipher per
 *   chunk, record framing) against ONE raw AES-256-GCM cipher fed the same pieces (`update` per piece, one tag):
 *   the cost of the format itself.
 * - `envelope.<op>.stream.<size>`: createEncryptStream / createDecryptStream in `pipeline()` against node's own
 *   Cipher/Decipher Transform (`createCipheriv` is a stream) in the same pipeline: the cost of the Transform API.
 * - `envelope.encrypt.core.<size>.chunk256KiB`: the core with 256 KiB chunks, to show the chunk-size trade-off.
 * Raw and envelope runs alternate; each figure is the median of the runs after a warm-up, in bytes per second of
 * process CPU time (user + system, so GC threads count), which other processes on a shared 2-core machine disturb
 * far less than wall time. All the work is synchronous on the main thread, so on an idle machine the two agree.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  createDecryptStream,
  createEncryptStream,
  EnvelopeDecryptor,
  EnvelopeEncryptor,
} from '../client/envelope-stream.js';

export interface BenchResult {
  readonly id: string;
  readonly unit: string;
  readonly value: number;
  readonly baseline: number;
  readonly ratio: number;
}

const PIECE = 64 * 1024;

function piecesOf(buf: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < buf.length; i += PIECE) out.push(buf.subarray(i, i + PIECE));
  return out;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/** A sink that counts bytes and keeps nothing. */
function sink(count: { bytes: number }): Writable {
  return new Writable({
    highWaterMark: 1024 * 1024,
    write(chunk: Buffer, _encoding, callback) {
      count.bytes += chunk.length;
      callback();
    },
  });
}

/** CPU seconds (user + system) spent by this process in `fn`: steadier than wall time on a shared machine. */
async function elapsed(fn: () => Promise<void> | void): Promise<number> {
  const t0 = process.cpuUsage();
  await fn();
  const d = process.cpuUsage(t0);
  return (d.user + d.system) / 1e6;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Alternates baseline and value runs; returns [value, baseline] medians in seconds. */
async function pair(
  runs: number,
  value: () => Promise<void> | void,
  baseline: () => Promise<void> | void,
): Promise<[number, number]> {
  await baseline();
  await value();
  const v: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < runs; i++) {
    b.push(await elapsed(baseline));
    v.push(await elapsed(value));
  }
  return [median(v), median(b)];
}

function result(id: string, bytes: number, [value, baseline]: [number, number]): BenchResult {
  const v = bytes / value / 1e6;
  const b = bytes / baseline / 1e6;
  return {
    id,
    unit: 'MB/s',
    value: Math.round(v),
    baseline: Math.round(b),
    ratio: Math.round((v / b) * 100) / 100,
  };
}

/** Runs the benchmark and returns one result per (operation, API, size). */
export async function benchEnvelope(): Promise<BenchResult[]> {
  const key = new Uint8Array(randomBytes(32));
  const iv = new Uint8Array(randomBytes(12));
  const dataKey = new Uint8Array(randomBytes(32));
  const encOptions = {
    dataKey,
    encryptedDataKey: new Uint8Array(randomBytes(150)),
    keyId: 'bench-key',
    context: { tenant: 'bench' },
  };
  const resolveDataKey = () => dataKey.slice();
  const results: BenchResult[] = [];

  for (const [label, size, runs] of [
    ['1MiB', 1024 * 1024, 61],
    ['64MiB', 64 * 1024 * 1024, 5],
  ] as const) {
    const plaintext = new Uint8Array(randomBytes(size));
    const pieces = piecesOf(plaintext);

    // Reference ciphertexts for the decrypt runs.
    const rawCipher = createCipheriv('aes-256-gcm', key, iv);
    const rawPieces = pieces.map((p) => rawCipher.update(p));
    rawCipher.final();
    const rawTag = rawCipher.getAuthTag();
    const rawCiphertextPieces = piecesOf(concat(rawPieces));
    const envOut: Uint8Array[] = [];
    const enc = new EnvelopeEncryptor(encOptions);
    for (const p of pieces) enc.update(p, envOut);
    enc.finish(envOut);
    const envelopePieces = piecesOf(concat(envOut));

    // --- the format: sans-IO core against one raw cipher fed the same pieces (outputs dropped as produced) ---
    const encryptCore = (chunkSize: number) => {
      const e = new EnvelopeEncryptor({ ...encOptions, chunkSize });
      const out: Uint8Array[] = [];
      for (const p of pieces) {
        e.update(p, out);
        out.length = 0;
      }
      e.finish(out);
    };
    const rawEncrypt = () => {
      const c = createCipheriv('aes-256-gcm', key, iv);
      for (const p of pieces) c.update(p);
      c.final();
      c.getAuthTag();
    };
    results.push(
      result(
        `envelope.encrypt.core.${label}`,
        size,
        await pair(runs, () => encryptCore(64 * 1024), rawEncrypt),
      ),
    );
    results.push(
      result(
        `envelope.decrypt.core.${label}`,
        size,
        await pair(
          runs,
          async () => {
            const d = new EnvelopeDecryptor({ resolveDataKey });
            const out: Uint8Array[] = [];
            for (const p of envelopePieces) {
              const pending = d.update(p, out);
              if (pending) await pending;
              out.length = 0;
            }
            d.finish(out);
          },
          () => {
            const d = createDecipheriv('aes-256-gcm', key, iv);
            d.setAuthTag(rawTag);
            for (const p of rawCiphertextPieces) d.update(p);
            d.final();
          },
        ),
      ),
    );
    // The same format with 256 KiB chunks: a quarter of the per-chunk cipher set-ups.
    results.push(
      result(
        `envelope.encrypt.core.${label}.chunk256KiB`,
        size,
        await pair(runs, () => encryptCore(256 * 1024), rawEncrypt),
      ),
    );

    // --- the Transform API: our streams against node's Cipher/Decipher streams in the same pipeline ---
    const count = { bytes: 0 };
    results.push(
      result(
        `envelope.encrypt.stream.${label}`,
        size,
        await pair(
          runs,
          () => pipeline(Readable.from(pieces), createEncryptStream(encOptions), sink(count)),
          () => pipeline(Readable.from(pieces), createCipheriv('aes-256-gcm', key, iv), sink(count)),
        ),
      ),
    );
    count.bytes = 0;
    results.push(
      result(
        `envelope.decrypt.stream.${label}`,
        size,
        await pair(
          runs,
          () => pipeline(Readable.from(envelopePieces), createDecryptStream({ resolveDataKey }), sink(count)),
          () => {
            const d = createDecipheriv('aes-256-gcm', key, iv);
            d.setAuthTag(rawTag);
            return pipeline(Readable.from(rawCiphertextPieces), d, sink(count));
          },
        ),
      ),
    );
    /* Sanity: both decrypt pipelines produced every byte on every run (2 × (runs + 1) runs). */
    if (count.bytes !== 2 * (runs + 1) * size) {
      throw new Error(`benchmark decrypted ${count.bytes} bytes, expected ${2 * (runs + 1) * size}`);
    }
  }
  return results;
}
