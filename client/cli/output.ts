/**
 * CLI output contract (design §5): with `--json`, one JSON document on stdout, `{"ok":true,…}` or
 * `{"ok":false,"code","message"}`; exit 0 success, 1 verification failed / denied / operation error, 2 usage.
 */
import { EkmsError, toWireError } from '../../shared/errors.js';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/**
 * Text for a terminal: control characters (C0 but tab and newline, DEL, C1) and bidirectional formatting characters
 * are shown as \uXXXX. Human output carries strings other principals chose (key descriptions, context values, audit
 * fields): an escape sequence or a bidi override in one must not rewrite or disguise what the reader sees.
 */
export function terminalSafe(text: string): string {
  return text.replace(
    // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is this function's job
    /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

export function printResult(json: boolean, result: Record<string, unknown>, human: () => string): void {
  if (json) process.stdout.write(`${JSON.stringify({ ok: true, ...result })}\n`);
  else process.stdout.write(`${terminalSafe(human())}\n`);
}

/** Prints an error the contract's way and returns the exit code. */
export function printError(json: boolean, err: unknown): number {
  const wire = toWireError(err);
  const exit = err instanceof EkmsError && err.code === 'USAGE_ERROR' ? EXIT_USAGE : EXIT_FAILED;
  if (json) {
    const violations = err instanceof EkmsError ? err.details?.['violations'] : undefined;
    process.stdout.write(
      `${JSON.stringify({ ok: false, code: wire.code, message: wire.message, ...(violations ? { violations } : {}) })}\n`,
    );
  } else {
    process.stderr.write(`ekms: ${wire.code}: ${terminalSafe(wire.message)}\n`);
  }
  if (!(err instanceof EkmsError) && process.env['EKMS_DEBUG'])
    process.stderr.write(`${String((err as Error)?.stack)}\n`);
  return exit;
}
