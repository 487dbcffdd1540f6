/**
 * `ekms encrypt` and `ekms decrypt` (design §5): streaming envelope encryption of files of any size in constant
 * memory (client/envelope-stream.ts; docs/ciphertext-format.md §5–§6). One GenerateDataKey per file (encrypt),
 * one Decrypt of the data key (decrypt); the bulk AEAD runs in this process.
 *
 * Output goes to a temporary file beside --out (mode 0600 for plaintext), which is synced and renamed over --out
 * only when the whole stream succeeded; on any failure (or SIGINT/SIGTERM) it is deleted, so a tampered or
 * truncated input never leaves a partial plaintext file. `-` reads stdin / writes stdout; stdout cannot be taken
 * back, so decrypting to `-` may have written the chunks authenticated before a failure (exit 1 tells).
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, close as fsClose, open as fsOpen, fsync } from 'node:fs';
import { type FileHandle, open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { type Readable, Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { Presets, SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import type { EncryptionContext } from '../../shared/encryption-context.js';
import { EkmsError } from '../../shared/errors.js';
import { createDecryptStream, createEncryptStream, STREAM_LIMITS } from '../envelope-stream.js';
import {
  type ClientOptions,
  clientOptions,
  collect,
  intOption,
  ioError,
  parseContext,
  usage,
  withClient,
} from './common.js';
import { printResult } from './output.js';

/** Inputs larger than this get a progress bar (on a TTY stderr, without --json / --quiet). */
export const PROGRESS_THRESHOLD_BYTES = 8 * 1024 * 1024;

interface StreamCommandOptions extends ClientOptions {
  context: string[];
  in: string;
  out: string;
  quiet?: boolean;
}

interface Input {
  stream: Readable;
  /** Known for regular files. */
  size: number | undefined;
  close(): Promise<void>;
}

/** Opens --in now, so that a missing file fails before anything is asked of the service. */
async function openInput(path: string): Promise<Input> {
  if (path === '-') return { stream: process.stdin, size: undefined, close: async () => {} };
  let fh: FileHandle;
  let size: number | undefined;
  try {
    fh = await open(path, 'r');
    const st = await fh.stat();
    if (st.isDirectory()) {
      await fh.close();
      throw usage(`--in ${path} is a directory`);
    }
    size = st.isFile() ? st.size : undefined;
  } catch (err) {
    throw ioError(err, `cannot read ${path}`);
  }
  const stream = fh.createReadStream({ autoClose: false, highWaterMark: 256 * 1024 });
  return { stream, size, close: () => fh.close().catch(() => {}) };
}

interface Output {
  stream: Writable;
  /** Syncs and renames the temporary file over --out. */
  commit(): Promise<void>;
  /** Deletes the temporary file (idempotent). */
  abort(): Promise<void>;
}

async function openOutput(path: string, mode: number): Promise<Output> {
  if (path === '-') return { stream: process.stdout, commit: async () => {}, abort: async () => {} };
  const target = resolve(path);
  try {
    if ((await stat(target)).isDirectory()) throw usage(`--out ${path} is a directory`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(err, `cannot write ${path}`);
  }
  // Beside the target, so the rename stays on one filesystem (atomic); hidden, and never an existing file (wx).
  const tmp = join(dirname(target), `.${basename(target)}.${randomBytes(6).toString('hex')}.ekms-tmp`);
  // A plain descriptor, not a FileHandle: on Node 20 a FileHandle that fed a stream opened with autoClose: false
  // never settles a later sync()/close() (the process then exits silently mid-command).
  let fd: number;
  try {
    fd = await promisify(fsOpen)(tmp, 'wx', mode);
  } catch (err) {
    throw ioError(err, `cannot write beside ${path}`);
  }
  let done = false;
  const abort = async (): Promise<void> => {
    if (done) return;
    done = true;
    await promisify(fsClose)(fd).catch(() => {});
    await rm(tmp, { force: true });
  };
  return {
    stream: createWriteStream('', { fd, autoClose: false, highWaterMark: 256 * 1024 }),
    async commit() {
      try {
        await promisify(fsync)(fd);
        done = true;
        await promisify(fsClose)(fd);
        await rename(tmp, target);
      } catch (err) {
        done = false;
        await abort();
        throw ioError(err, `cannot write ${path}`);
      }
    },
    abort,
  };
}

/** Counts the bytes that pass (and reports them to `onBytes`). */
function counter(onBytes?: (total: number) => void): Transform & { bytes: number } {
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      t.bytes += chunk.length;
      onBytes?.(t.bytes);
      cb(null, chunk);
    },
  }) as Transform & { bytes: number };
  t.bytes = 0;
  return t;
}

interface Progress {
  update(bytes: number): void;
  stop(): void;
}

/** A progress bar on stderr for large inputs on a terminal (never with --json or --quiet). */
function progressBar(o: StreamCommandOptions, size: number | undefined): Progress | undefined {
  if (o.json || o.quiet || !process.stderr.isTTY || size === undefined || size <= PROGRESS_THRESHOLD_BYTES) {
    return undefined;
  }
  const bar = new SingleBar(
    {
      stream: process.stderr,
      format: ' {bar} {percentage}% | {done}/{size} MiB | ETA {eta_formatted}',
      hideCursor: true,
      clearOnComplete: true,
    },
    Presets.shades_classic,
  );
  const mib = (n: number): string => (n / (1024 * 1024)).toFixed(1);
  bar.start(size, 0, { done: mib(0), size: mib(size) });
  return {
    update: (n) => bar.update(n, { done: mib(n) }),
    stop: () => bar.stop(),
  };
}

interface StreamResult {
  bytesIn: number;
  bytesOut: number;
}

/**
 * Runs input → cipher → output with backpressure (constant memory), then commits the output; on failure deletes
 * the temporary output and rethrows (file errors as IO_ERROR).
 */
async function run(
  o: StreamCommandOptions,
  input: Input,
  cipher: Transform,
  mode: number,
): Promise<StreamResult> {
  // The signal handlers are installed before the temporary file can exist (openOutput creates it only after its
  // first await, and these lines run synchronously before that): installed after `await openOutput(…)`, a signal
  // that arrived between the file's creation and their installation killed the process with the default action
  // and left the `.ekms-tmp` file behind (test/cli/encrypt.test.ts, SIGTERM test). A signal while the file is
  // being created waits for it and then deletes it.
  const opening = openOutput(o.out, mode);
  const onSignal = (signal: NodeJS.Signals): void => {
    void opening
      .then(
        (output) => output.abort(),
        () => {},
      )
      .finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let bar: Progress | undefined;
  try {
    const output = await opening;
    const progress = progressBar(o, input.size);
    bar = progress;
    const bytesIn = counter(progress ? (n) => progress.update(n) : undefined);
    const bytesOut = counter();
    try {
      await pipeline(input.stream, bytesIn, cipher, bytesOut, output.stream);
      await output.commit();
      return { bytesIn: bytesIn.bytes, bytesOut: bytesOut.bytes };
    } catch (err) {
      await output.abort();
      throw err instanceof EkmsError ? err : ioError(err, 'stream failed');
    }
  } finally {
    bar?.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function checkPaths(o: StreamCommandOptions): void {
  if (o.out === '-' && o.json) throw usage('--json prints to stdout: give --out a file, not -');
}

/** The summary: on stdout, unless stdout carries the data (then on stderr, and not at all with --quiet). */
function report(o: StreamCommandOptions, result: Record<string, unknown>, human: () => string): void {
  if (o.out !== '-') printResult(o.json === true, result, human);
  else if (!o.quiet) process.stderr.write(`${human()}\n`);
}

function contextJson(context: EncryptionContext): Record<string, string> {
  return { ...context };
}

export function registerEncrypt(program: Command): void {
  clientOptions(
    program
      .command('encrypt')
      .description(
        'envelope-encrypt a file of any size (one data key per file, chunked AEAD, constant memory)',
      )
      .requiredOption('--key <key-id>', 'key id or alias/NAME')
      .option('--context <k=v>', 'encryption context entry (repeatable)', collect, [])
      .requiredOption('--in <file>', 'plaintext (- for stdin)')
      .requiredOption('--out <file>', 'envelope stream (- for stdout); written atomically')
      .option(
        '--chunk-size <bytes>',
        `plaintext bytes per chunk (${STREAM_LIMITS.minChunkSize}..${STREAM_LIMITS.maxChunkSize}, default ${STREAM_LIMITS.defaultChunkSize})`,
      )
      .option('--quiet', 'no progress bar'),
  ).action(async (o: StreamCommandOptions & { key: string; chunkSize?: string }) => {
    const context = parseContext(o.context);
    const chunkSize =
      o.chunkSize === undefined
        ? undefined
        : intOption(o.chunkSize, '--chunk-size', STREAM_LIMITS.minChunkSize, STREAM_LIMITS.maxChunkSize);
    checkPaths(o);
    const input = await openInput(o.in);
    try {
      const r = await withClient(o, async (client) => {
        const dk = await client.generateDataKey(o.key, { encryptionContext: context });
        let cipher: Transform;
        try {
          cipher = createEncryptStream({
            dataKey: dk.plaintext,
            encryptedDataKey: dk.ciphertextBlob,
            keyId: dk.keyId,
            context,
            ...(chunkSize === undefined ? {} : { chunkSize }),
          });
        } finally {
          // The stream derived its own keys; the data key itself is not needed any more.
          dk.plaintext.fill(0);
        }
        const sizes = await run(o, input, cipher, 0o666);
        return { keyId: dk.keyId, keyVersion: dk.keyVersion, ...sizes };
      });
      report(
        o,
        {
          keyId: r.keyId,
          keyVersion: r.keyVersion,
          encryptionContext: contextJson(context),
          chunkSize: chunkSize ?? STREAM_LIMITS.defaultChunkSize,
          bytesIn: r.bytesIn,
          bytesOut: r.bytesOut,
          in: o.in,
          out: o.out,
        },
        () =>
          `encrypted ${r.bytesIn} bytes → ${r.bytesOut} bytes (${o.out}) under ${r.keyId} v${r.keyVersion}`,
      );
    } finally {
      await input.close();
    }
  });

  clientOptions(
    program
      .command('decrypt')
      .description('decrypt an envelope stream; nothing is left at --out unless every chunk verifies')
      .option(
        '--context <k=v>',
        "expected encryption context (repeatable); must equal the stream's",
        collect,
        [],
      )
      .option(
        '--key <key-id>',
        'refuse streams whose data key was not sealed under this key (KEY_ID_MISMATCH)',
      )
      .requiredOption('--in <file>', 'envelope stream (- for stdin)')
      .requiredOption('--out <file>', 'plaintext (- for stdout); written atomically, mode 0600')
      .option('--quiet', 'no progress bar'),
  ).action(async (o: StreamCommandOptions & { key?: string }) => {
    // No --context means "whatever the stream says" (the enclave still checks it against the sealed data key);
    // with --context the header's context must equal it exactly (CONTEXT_MISMATCH) before any key is asked for.
    const expected = o.context.length > 0 ? parseContext(o.context) : undefined;
    checkPaths(o);
    const input = await openInput(o.in);
    try {
      const r = await withClient(o, async (client) => {
        let key: { keyId: string; keyVersion: number; context: EncryptionContext } | undefined;
        const cipher = createDecryptStream({
          ...(expected === undefined ? {} : { context: expected }),
          resolveDataKey: async (header) => {
            const d = await client.decrypt(header.encryptedDataKey, header.context, o.key ?? header.keyId);
            key = { keyId: d.keyId, keyVersion: d.keyVersion, context: header.context };
            return d.plaintext; // the stream zeroes it once its keys are derived
          },
        });
        const sizes = await run(o, input, cipher, 0o600);
        if (key === undefined) throw new EkmsError('INTERNAL_ERROR', 'the stream ended without a data key');
        return { ...key, ...sizes };
      });
      report(
        o,
        {
          keyId: r.keyId,
          keyVersion: r.keyVersion,
          encryptionContext: contextJson(r.context),
          bytesIn: r.bytesIn,
          bytesOut: r.bytesOut,
          in: o.in,
          out: o.out,
        },
        () =>
          `decrypted ${r.bytesIn} bytes → ${r.bytesOut} bytes (${o.out}) under ${r.keyId} v${r.keyVersion}`,
      );
    } finally {
      await input.close();
    }
  });
}
