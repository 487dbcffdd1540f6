/**
 * The CLI's human output (client/cli/output.ts): strings other principals chose — key descriptions, context
 * values, audit fields — reach a terminal. Control and bidirectional formatting characters are shown escaped, so
 * that an escape sequence cannot rewrite the screen and an override cannot disguise a value.
 */
import { describe, expect, it } from 'vitest';
import { terminalSafe } from '../../client/cli/output.js';

describe('terminalSafe', () => {
  it('escapes C0 (but tab and newline), DEL, C1 and bidi formatting characters', () => {
    expect(terminalSafe('description: \u001b[2J\u001b]0;owned\u0007 ok')).toBe(
      'description: \\u001b[2J\\u001b]0;owned\\u0007 ok',
    );
    expect(terminalSafe('a\rb\u0000c\u007fd\u009be')).toBe('a\\u000db\\u0000c\\u007fd\\u009be');
    expect(terminalSafe('key: \u202egnp.exe \u2066x\u2069 \u200f')).toBe(
      'key: \\u202egnp.exe \\u2066x\\u2069 \\u200f',
    );
  });

  it('leaves printable text, tabs, newlines and other Unicode as they are', () => {
    const text = 'KEY ID\tSTATE\nab12…\tEnabled — tenant=Zürich, 病院 😀';
    expect(terminalSafe(text)).toBe(text);
  });
});
