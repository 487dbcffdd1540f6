/**
 * Benchmark `envelope-1gib`: a 1 GiB object through encrypt → decrypt envelope streams in one pipeline, in constant
 * memory (issue 4: "a 1 GiB stream in constant memory, as a benchmark, not a test"), next to the same pipeline with
 * raw node:crypto AES-256-GCM streams in the same run.
 *
 * The source produces 64 KiB pieces (as a file read) of pseudo-random bytes without holding the object; the sink
 * hashes what comes out, and the digest must equal the source's. Rows: MB/s of the round trip (ratio envelope/raw),
 * and the peak RSS growth over the run, sampled every 50 ms (ratio envelope/raw; "constant" means it does not grow
 * with the object: a few MiB, far below 1 GiB).
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createDecryptStream, createEncryptStream } from '../client/envelope-stream.js';
import { type BenchResult, MiB, PIECE, row } from './envelope-harness.js';

const SIZE = Number(process.env['EKMS_BENCH_STREAM_BYTES'] ?? 1024 * MiB);

/** SIZE bytes in PIECE-sized chunks: a fresh random block XOR-free rotation, so no chunk repeats verbatim. */
function source(seed: Buffer): Readable {
  let sent = 0;
  let counter = 0;
  return new Readable({
    highWaterMark: PIECE,
    read() {
      if (sent >= SIZE) {
        this.push(null);
        return;
      }
      const n = Math.min(PIECE, SIZE - sent);
      const chunk = Buffer.allocUnsafe(n);
      seed.copy(chunk, 0, counter % 1024, (counter % 1024) + n);
      chunk.writeUInt32BE(counter++ >>> 0, 0);
      sent += n;
      this.push(chunk);
    },
  });
}

function hashSink(h: ReturnType<typeof createHash>): Writable {
  return new Writable({
    write(chunk: Buffer, _e, cb) {
      h.update(chunk);
      cb();
    },
  });
}

async function run(
  encrypt: () => NodeJS.ReadWriteStream,
  decrypt: () => NodeJS.ReadWriteStream,
  seed: Buffer,
): Promise<{ mbps: number; peakRssGrowthMiB: number; digest: string }> {
  (globalThis as { gc?: () => void }).gc?.();
  const rss0 = process.memoryUsage().rss;
  let peak = rss0;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 50);
  const h = createHash('sha256');
  const t0 = performance.now();
  await pipeline(source(seed), encrypt(), decrypt(), hashSink(h));
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(timer);
  peak = Math.max(peak, process.memoryUsage().rss);
  return { mbps: SIZE / seconds / 1e6, peakRssGrowthMiB: (peak - rss0) / MiB, digest: h.digest('hex') };
}

export async function benchEnvelopeMemory(): Promise<BenchResult[]> {
  const seed = randomBytes(PIECE + 1024);
  const expected = createHash('sha256');
  await pipeline(source(seed), hashSink(expected));
  const want = expected.digest('hex');
  const key = randomBytes(32);
  const iv = randomBytes(12);
  let tag: Buffer | undefined;
  const raw = await run(
    () => {
      const c = createCipheriv('aes-256-gcm', key, iv);
      c.on('end', () => {
        tag = c.getAuthTag();
      });
      return c;
    },
    () => {
      // The tag is known only at the end: a streaming GCM decipher verifies at final(); set it then.
      const d = createDecipheriv('aes-256-gcm', key, iv);
      const final = d._flush.bind(d);
      d._flush = (cb) => {
        if (tag) d.setAuthTag(tag);
        final(cb);
      };
      return d;
    },
    seed,
  );
  const dataKey = new Uint8Array(randomBytes(32));
  const env = await run(
    () =>
      createEncryptStream({
        dataKey,
        encryptedDataKey: new Uint8Array(150),
        keyId: 'bench',
        context: { tenant: 'bench' },
      }),
    () => createDecryptStream({ resolveDataKey: () => dataKey.slice() }),
    seed,
  );
  if (raw.digest !== want || env.digest !== want)
    throw new Error('a 1 GiB round trip did not give the input back');
  const label = `${Math.round(SIZE / MiB)}MiB`;
  return [
    row(`envelope.roundtrip.${label}`, 'MB/s', env.mbps, raw.mbps),
    row(`envelope.roundtrip.${label}.peak-rss-growth`, 'MiB', env.peakRssGrowthMiB, raw.peakRssGrowthMiB),
  ];
}
