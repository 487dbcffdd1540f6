/**
 * shared/random.ts: pooled draws from the OS CSPRNG. Each call gets fresh bytes of the right length, no
 * bytes are handed out twice (across pool refills too), and bad lengths are refused.
 */
import { describe, expect, it, vi } from 'vitest';

describe('secureRandom', () => {
  it('returns n bytes in a new array, for the pooled and the direct path', async () => {
    const { secureRandom } = await import('../../shared/random.js');
    for (const n of [0, 1, 12, 32, 256, 257, 5000]) {
      const a = secureRandom(n);
      expect(a).toBeInstanceOf(Uint8Array);
      expect(a.length).toBe(n);
    }
    const a = secureRandom(32);
    const b = secureRandom(32);
    expect(a.buffer).not.toBe(b.buffer);
  });

  it('never hands out the same bytes twice, across several pool refills', async () => {
    const { secureRandom } = await import('../../shared/random.js');
    const seen = new Set<string>();
    // 4096 / 32 = 128 draws per pool: 1000 draws span ~8 refills.
    for (let i = 0; i < 1000; i++) seen.add(Buffer.from(secureRandom(32)).toString('hex'));
    expect(seen.size).toBe(1000);
  });

  it('draws from node:crypto randomFillSync, once per 4 KiB of small requests', async () => {
    vi.resetModules();
    const calls: number[] = [];
    vi.doMock('node:crypto', async (importOriginal) => {
      const actual = await importOriginal<typeof import('node:crypto')>();
      return {
        ...actual,
        randomFillSync: <T extends NodeJS.ArrayBufferView>(buf: T): T => {
          calls.push(buf.byteLength);
          return actual.randomFillSync(buf);
        },
      };
    });
    const { secureRandom } = await import('../../shared/random.js');
    for (let i = 0; i < 128; i++) secureRandom(32);
    expect(calls).toEqual([4096]);
    secureRandom(32);
    expect(calls).toEqual([4096, 4096]);
    vi.doUnmock('node:crypto');
    vi.resetModules();
  });

  it('refuses negative and fractional lengths', async () => {
    const { secureRandom } = await import('../../shared/random.js');
    expect(() => secureRandom(-1)).toThrow(RangeError);
    expect(() => secureRandom(1.5)).toThrow(RangeError);
  });
});
