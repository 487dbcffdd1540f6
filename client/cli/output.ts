/**
 * CLI output contract (design §5): with `--json`, one JSON document on stdout, `{"ok":true,…}` or
 * `{"ok":false,"code","message"}`; exit 0 success, 1 verification failed / denied / operation error, 2 usage.
 */
import { EkmsError, toWireError } from '../../shared/errors.js';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

export function printResult(json: boolean, result: Record<string, unknown>, human: () => string): void {
  if (json) process.stdout.write(`${JSON.stringify({ ok: true, ...result })}\n`);
  else process.stdout.write(`${human()}\n`);
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
    process.stderr.write(`ekms: ${wire.code}: ${wire.message}\n`);
  }
  if (!(err instanceof EkmsError) && process.env['EKMS_DEBUG'])
    process.stderr.write(`${String((err as Error)?.stack)}\n`);
  return exit;
}
