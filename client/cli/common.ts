/**
 * Helpers shared by the client commands (`key …`, `encrypt`, `decrypt`): the common options (--profile, --timeout,
 * --json), connecting with the profile's trust check, `--context k=v` and numeric/base64 option parsing, bounded
 * input reads. Usage problems are ConfigError USAGE_ERROR (exit 2, design §5).
 */
import { open } from 'node:fs/promises';
import type { Command } from 'commander';
import type { EncryptionContext } from '../../shared/encryption-context.js';
import { ConfigError, EkmsError, TransportError } from '../../shared/errors.js';
import { loadProfile, profileConnectOptions } from '../profile.js';
import { connect, type EkmsClient } from '../sdk.js';

/** Options every client command takes. */
export interface ClientOptions {
  readonly profile?: string;
  readonly timeout: string;
  readonly json?: boolean;
}

/** Adds --profile, --timeout and --json (as `ekms status` has them). */
export function clientOptions(cmd: Command): Command {
  return cmd
    .option('--profile <file>', 'client profile (default $EKMS_PROFILE or ./.ekms/profile.json)')
    .option('--timeout <ms>', 'request timeout in milliseconds', '5000')
    .option('--json', 'JSON output');
}

/** Commander collector for repeatable options. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function usage(message: string): ConfigError {
  return new ConfigError('USAGE_ERROR', message);
}

/**
 * An integer option within [min, max].
 * @throws ConfigError USAGE_ERROR
 */
export function intOption(value: string, option: string, min: number, max: number): number {
  const n = /^\d{1,16}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw usage(`${option} must be an integer from ${min} to ${max}, got "${value}"`);
  }
  return n;
}

const DURATION_UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/**
 * A duration option as milliseconds within [minMs, maxMs]: N followed by s, m, h or d (90s, 30m, 1h, 7d). `range`
 * is how the message states the bounds (e.g. "1s..24h").
 * @throws ConfigError USAGE_ERROR
 */
export function durationOption(
  value: string,
  option: string,
  minMs: number,
  maxMs: number,
  range: string,
): number {
  const m = /^(\d{1,6})([smhd])$/.exec(value);
  const ms = m === null ? Number.NaN : Number(m[1]) * DURATION_UNIT_MS[m[2] as keyof typeof DURATION_UNIT_MS];
  if (!Number.isSafeInteger(ms) || ms <= 0 || ms < minMs || ms > maxMs) {
    throw usage(`${option} takes ${range} (N followed by s, m, h or d, e.g. 30m, 1h), got "${value}"`);
  }
  return ms;
}

/**
 * The `--context k=v` options as a map: split at the first `=`; a missing `=`, an empty key or a key given twice is
 * a usage error. The service's own rules (limits, reserved `ekms:` prefix) are checked by the SDK: CONTEXT_INVALID.
 * @throws ConfigError USAGE_ERROR
 */
export function parseContext(pairs: readonly string[], option = '--context'): EncryptionContext {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq < 0) throw usage(`${option} takes KEY=VALUE, got "${pair}" (no "=")`);
    if (eq === 0) throw usage(`${option} takes KEY=VALUE, got "${pair}" (empty key)`);
    const k = pair.slice(0, eq);
    if (Object.hasOwn(out, k)) throw usage(`${option} gives the key "${k}" twice`);
    out[k] = pair.slice(eq + 1);
  }
  return { ...out };
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Strict standard base64 (padded). Node's decoder silently skips invalid characters; this does not.
 * @throws ConfigError USAGE_ERROR
 */
export function parseBase64(value: string, option: string): Uint8Array {
  const v = value.trim();
  if (!BASE64.test(v)) {
    const hint = /^[0-9a-fA-F]+$/.test(v) ? ' (this looks hex-encoded)' : '';
    throw usage(`${option} must be standard base64 with padding${hint}`);
  }
  return new Uint8Array(Buffer.from(v, 'base64'));
}

export function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** Turns a Node filesystem error into IO_ERROR with its errno (other errors pass through). */
export function ioError(err: unknown, what: string): unknown {
  if (err instanceof EkmsError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) {
    return new ConfigError('IO_ERROR', `${what}: ${code}`, { cause: err, details: { errno: code } });
  }
  return err;
}

/**
 * Reads a file (or stdin for `-`) of at most `max` bytes; a larger input is `tooLarge()`, detected without
 * reading more than max + 1 bytes (style §6: bounded before decoded).
 * @throws ConfigError IO_ERROR, or what tooLarge returns
 */
export async function readBounded(path: string, max: number, tooLarge: () => Error): Promise<Uint8Array> {
  // The input may be plaintext: every intermediate copy is zeroed once the result is assembled (style §7).
  const parts: Buffer[] = [];
  let total = 0;
  const take = (chunk: Buffer): void => {
    total += chunk.length;
    if (total > max) throw tooLarge();
    parts.push(chunk);
  };
  const assemble = (): Uint8Array => new Uint8Array(Buffer.concat(parts));
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  const buf = path === '-' ? undefined : Buffer.alloc(max + 1);
  try {
    if (path === '-') {
      for await (const chunk of process.stdin) take(chunk as Buffer);
      return assemble();
    }
    try {
      fh = await open(path, 'r');
      for (;;) {
        const { bytesRead } = await fh.read(buf!, 0, buf!.length, null);
        if (bytesRead === 0) break;
        take(Buffer.from(buf!.subarray(0, bytesRead)));
      }
      return assemble();
    } catch (err) {
      throw ioError(err, `cannot read ${path}`);
    }
  } finally {
    buf?.fill(0);
    for (const p of parts) p.fill(0);
    await fh?.close();
  }
}

/**
 * Loads the profile, connects, and checks that the enclave reports the profile's measurement (as `ekms status`);
 * runs `fn` and closes the client.
 * @throws ConfigError USAGE_ERROR, PROFILE_NOT_FOUND, PROFILE_INVALID; TransportError CONNECTION_FAILED,
 *   ENCLAVE_MEASUREMENT_MISMATCH; whatever `fn` throws
 */
export async function withClient<T>(o: ClientOptions, fn: (client: EkmsClient) => Promise<T>): Promise<T> {
  const timeoutMs = intOption(o.timeout, '--timeout', 1, 3_600_000);
  const { profile, dir } = loadProfile(o.profile);
  const client = await connect(profile.endpoint, {
    ...profileConnectOptions(profile, dir),
    timeoutMs,
    connectTimeoutMs: timeoutMs,
  });
  try {
    const d = await client.describe();
    if (d.measurement !== profile.trust.measurement) {
      throw new TransportError(
        'ENCLAVE_MEASUREMENT_MISMATCH',
        `enclave measurement ${d.measurement} is not the profile's ${profile.trust.measurement}`,
      );
    }
    return await fn(client);
  } finally {
    client.close();
  }
}
