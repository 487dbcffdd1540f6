/**
 * The host's logger: pino JSON on stderr (stdout carries the one `ready` line). Redaction paths drop anything
 * that could carry payloads if a future log call forgot the rule: logs record codes and sizes, never bodies.
 */
import pino, { type Logger } from 'pino';

const SENSITIVE_FIELDS = ['frame', 'body', 'payload', 'plaintext', 'key', 'secret', 'params', 'result'];

/** Each sensitive field at the top level and one level down (`{ req: { params } }`, `{ err: { frame } }`). */
export const REDACT_PATHS = [...SENSITIVE_FIELDS, ...SENSITIVE_FIELDS.map((f) => `*.${f}`)];

/**
 * The host's root logger. `destination` defaults to stderr (fd 2); tests pass a stream to read what is logged.
 */
export function createLogger(
  level = process.env['EKMS_LOG_LEVEL'] ?? 'info',
  destination: pino.DestinationStream = pino.destination(2),
): Logger {
  return pino(
    {
      level,
      base: { component: 'host', pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    destination,
  );
}
