/**
 * Benchmark `envelope-1gib`: a 1 GiB object through encrypt → decrypt envelope streams in one pipeline, in constant
 * memory (issue 4: "a 1 GiB stream in constant memory, as a benchmark, not a test"), next to the same pipeline with
 * raw node:crypto AES-256-GCM streams in the same run.
 *
 * The source produces 64 KiB pieces (as a file read) of pseudo-random bytes without holding the object; the sink
 * hashes what comes out, and the digest must equal the source's. Rows: MB/s of the round trip in wall-clock time, two
 * runs of each side in opposite order (ratio envelope/raw), and the peak growth of the bytes held by live ArrayBuffers
 * (after a full collection, every 16 MiB of output) in one more, untimed run of each ("constant" means it does not
 * grow with the object: well under a few MiB, far below 1 GiB).
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createDecryptStream, createEncryptStream } from '../client/envelope-stream.js';
import { type BenchResult, collectGarbage, exposedGc, MiB, PIECE, row } from './envelope-harness.js';

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

/** Hashes what it is given; after each `MEMORY_SAMPLE_BYTES` of it, waits for `every` (if given) before going on. */
function hashSink(h: ReturnType<typeof createHash>, every?: () => Promise<void>): Writable {
  let sinceSample = 0;
  return new Writable({
    write(chunk: Buffer, _e, cb) {
      h.update(chunk);
      sinceSample += chunk.length;
      if (every !== undefined && sinceSample >= MEMORY_SAMPLE_BYTES) {
        sinceSample = 0;
        every().then(() => cb(), cb);
        return;
      }
      cb();
    },
  });
}

/** How often the memory run looks at live memory: every 16 MiB of output (64 looks per GiB). */
const MEMORY_SAMPLE_BYTES = 16 * MiB;

/** One round trip, timed (wall clock), its output hashed. */
async function run(
  encrypt: () => NodeJS.ReadWriteStream,
  decrypt: () => NodeJS.ReadWriteStream,
  seed: Buffer,
): Promise<{ mbps: number; digest: string }> {
  collectGarbage();
  const h = createHash('sha256');
  const t0 = performance.now();
  await pipeline(source(seed), encrypt(), decrypt(), hashSink(h));
  const seconds = (performance.now() - t0) / 1000;
  return { mbps: SIZE / seconds / 1e6, digest: h.digest('hex') };
}

/**
 * One round trip, untimed, for its memory: every 16 MiB of output the sink holds the pipeline (its buffers stay where
 * they are), runs a full collection, lets 10 ms pass (V8 frees the dead ArrayBuffers' memory on a helper thread after
 * the collection: read at once, 10–30 MiB of garbage still counts, and now and then still does 10 ms later, so it
 * looks three times and keeps the least), and reads the bytes held by live ArrayBuffers — the data in flight, what
 * would grow with the object if a stage buffered it. Not the JS heap, whose readings at the same point scatter by
 * 0.3–1.4 MiB; not RSS, which the benchmark's allocator setting (bench/allocator.ts) keeps at its high-water mark;
 * not a timer, which a pipeline that never yields to the event loop's timers would starve. Returns the peak growth
 * in MiB and the digest of the output.
 */
async function peakBufferGrowth(
  encrypt: () => NodeJS.ReadWriteStream,
  decrypt: () => NodeJS.ReadWriteStream,
  seed: Buffer,
): Promise<{ mib: number; digest: string }> {
  const gc = exposedGc();
  if (gc === undefined)
    throw new Error('the memory figure needs node --expose-gc (npm run bench starts it so)');
  const held = async (): Promise<number> => {
    // Garbage only adds: the least of three looks is the closest to what is live.
    let least = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 10));
      least = Math.min(least, process.memoryUsage().arrayBuffers);
    }
    return least;
  };
  const held0 = await held();
  let peak = held0;
  const h = createHash('sha256');
  await pipeline(
    source(seed),
    encrypt(),
    decrypt(),
    hashSink(h, async () => {
      peak = Math.max(peak, await held());
    }),
  );
  return { mib: (peak - held0) / MiB, digest: h.digest('hex') };
}

export async function benchEnvelopeMemory(): Promise<BenchResult[]> {
  const seed = randomBytes(PIECE + 1024);
  const expected = createHash('sha256');
  await pipeline(source(seed), hashSink(expected));
  const want = expected.digest('hex');
  const key = randomBytes(32);
  const iv = randomBytes(12);
  let tag: Buffer | undefined;
  const rawEncrypt = () => {
    const c = createCipheriv('aes-256-gcm', key, iv);
    c.on('end', () => {
      tag = c.getAuthTag();
    });
    return c;
  };
  const rawDecrypt = () => {
    // The tag is known only at the end: a streaming GCM decipher verifies at final(); set it then.
    const d = createDecipheriv('aes-256-gcm', key, iv);
    const final = d._flush.bind(d);
    d._flush = (cb) => {
      if (tag) d.setAuthTag(tag);
      final(cb);
    };
    return d;
  };
  const dataKey = new Uint8Array(randomBytes(32));
  const envEncrypt = () =>
    createEncryptStream({
      dataKey,
      encryptedDataKey: new Uint8Array(150),
      keyId: 'bench',
      context: { tenant: 'bench' },
    });
  const envDecrypt = () => createDecryptStream({ resolveDataKey: () => dataKey.slice() });
  const rawRun = () => run(rawEncrypt, rawDecrypt, seed);
  const envRun = () => run(envEncrypt, envDecrypt, seed);
  // Two rounds in opposite order (raw, envelope; envelope, raw): a slow stretch of the machine or the other's
  // garbage falls on both sides alike. Each figure is the mean of its two runs, the ratio the mean of the rounds'.
  const raw = [await rawRun()];
  const env = [await envRun()];
  env.push(await envRun());
  raw.push(await rawRun());
  for (const r of [...raw, ...env]) {
    if (r.digest !== want) throw new Error('a 1 GiB round trip did not give the input back');
  }
  const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const ratio = mean(env.map((e, i) => e.mbps / raw[i]!.mbps));
  const rawMemory = await peakBufferGrowth(rawEncrypt, rawDecrypt, seed);
  const envMemory = await peakBufferGrowth(envEncrypt, envDecrypt, seed);
  if (rawMemory.digest !== want || envMemory.digest !== want) {
    throw new Error('a 1 GiB round trip did not give the input back');
  }
  const label = `${Math.round(SIZE / MiB)}MiB`;
  return [
    row(
      `envelope.roundtrip.${label}`,
      'MB/s',
      mean(env.map((r) => r.mbps)),
      mean(raw.map((r) => r.mbps)),
      ratio,
    ),
    row(`envelope.roundtrip.${label}.peak-buffer-growth`, 'MiB', envMemory.mib, rawMemory.mib),
  ];
}
