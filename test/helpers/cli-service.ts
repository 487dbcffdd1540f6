/**
 * Runs the built `ekms` CLI as a child process against a real service started with `ekms start` (host + enclave,
 * temp data dir, unix socket endpoint), for the CLI contract tests (design §5).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from './service.js';

export interface CliResult {
  /** Exit code (null if killed by a signal). */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: Buffer;
  readonly stderr: string;
}

export interface RunOptions {
  readonly cwd?: string;
  /** Written to the CLI's stdin, which is then closed (stdin is closed at once without it). */
  readonly input?: Buffer | string;
  readonly timeoutMs?: number;
}

/** The environment of the CLIs: no profile or debug settings inherited from the shell running the tests. */
function cliEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env['EKMS_PROFILE'];
  delete env['EKMS_DEBUG'];
  return env;
}

/** Runs `node bin/ekms.mjs ARGS…` and collects its exit code, stdout (bytes) and stderr. */
export function runCli(args: readonly string[], opts: RunOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: opts.cwd ?? tmpdir(),
      env: cliEnv(),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: err });
    });
    // The CLI may exit before reading all of its input (a usage error): that EPIPE is not the test's concern.
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input);
  });
}

/**
 * The one JSON document a `--json` command prints (design §5): exactly one line on stdout.
 * Throws (failing the test) if stdout holds anything else.
 */
export function jsonOf(r: CliResult): Record<string, unknown> {
  const text = r.stdout.toString('utf8');
  const lines = text.split('\n').filter((l) => l !== '');
  if (lines.length !== 1 || !text.endsWith('\n')) {
    throw new Error(`expected one JSON line on stdout, got ${JSON.stringify(text)} (stderr: ${r.stderr})`);
  }
  const doc = JSON.parse(lines[0]!) as unknown;
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new Error(`not an object: ${text}`);
  return doc as Record<string, unknown>;
}

/** Asserts the failure shape `{"ok":false,"code","message"}` and returns code, exit code and message. */
export function failureOf(r: CliResult): { exit: number | null; code: unknown; message: unknown } {
  const doc = jsonOf(r);
  if (doc['ok'] !== false || typeof doc['code'] !== 'string' || typeof doc['message'] !== 'string') {
    throw new Error(`expected {"ok":false,"code","message"}, got ${JSON.stringify(doc)}`);
  }
  return { exit: r.code, code: doc['code'], message: doc['message'] };
}

export interface CliService {
  /** The data dir (profile.json, state/, the unix socket). */
  readonly dir: string;
  /** Path of the client profile `ekms start` wrote. */
  readonly profile: string;
  readonly ready: Record<string, unknown>;
  /** Stops the service (SIGTERM, then SIGKILL after 15 s) and deletes the data dir. */
  stop(): Promise<void>;
}

function waitExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => child.once('exit', () => r()));
}

/**
 * `ekms start --data TMP --listen unix:TMP/h.sock`, resolved once it prints its "ready" line.
 * @throws if the service exits or is not ready within `timeoutMs`
 */
export async function startCliService(prefix: string, timeoutMs = 45_000): Promise<CliService> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const child = spawn(
    process.execPath,
    [CLI, 'start', '--data', dir, '--listen', `unix:${join(dir, 'h.sock')}`, '--log-level', 'error'],
    { cwd: dir, env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let err = '';
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = waitExit(child);
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(
        () => reject(new Error(`ekms start not ready after ${timeoutMs} ms: ${err}`)),
        timeoutMs,
      );
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        const line = buf.split('\n').find((l) => l.includes('"ready"'));
        if (line) {
          clearTimeout(timer);
          resolve(JSON.parse(line) as Record<string, unknown>);
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`ekms start exited ${String(code)} before ready: ${err}`));
      });
    });
    return { dir, profile: String(ready['profile']), ready, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** The names in `dir` left by an interrupted or failed atomic write (`.NAME.RANDOM.ekms-tmp`). */
export function tempFilesIn(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith('.ekms-tmp'));
}

/** Lowercase UUID, as key ids are. */
export const KEY_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Strict standard base64 with padding. */
export const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** ISO 8601 instant as the service prints it. */
export const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{3})?Z$/;

/**
 * Maps `fn` over `items`, at most `limit` at a time (CLI processes are CPU-bound at start-up: on a 2-core machine
 * two at a time halves the wall time, more does not help). Results are in the order of `items`.
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
