/**
 * The host's logger: pino JSON on stderr (stdout carries the one `ready` line). Redaction paths drop anything
 * that could carry payloads if a future log call forgot the rule: logs record codes and sizes, never bodies.
 */
import pino, { type Logger } from 'pino';

export const REDACT_PATHS = [
  'frame',
  'body',
  'payload',
  'plaintext',
  'key',
  'params',
  'result',
  '*.frame',
  '*.payload',
];

export function createLogger(level = process.env['EKMS_LOG_LEVEL'] ?? 'info'): Logger {
  return pino(
    {
      level,
      base: { component: 'host', pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    pino.destination(2),
  );
}
