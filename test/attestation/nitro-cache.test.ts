/**
 * The X509Cache as the Nitro verifier uses it: a hit skips only the signature check (no
 * X509Certificate#verify call), validity at `now` is re-checked on every call, stale links are dropped,
 * the bound holds, failures are not cached, and a cached chain never lets a bad document through.
 */
import { X509Certificate } from 'node:crypto';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  AWS_NITRO_TRUST_ANCHORS,
  parseNitroDocument,
  verifyNitroDocument,
} from '../../attestation/nitro/index.js';
import {
  createSimulatedNitroCa,
  type SimulatedNitroCa,
  simulatedNitroTrustAnchor,
  simulateNitroDocument,
} from '../../attestation/simulated/nitro.js';
import { type TrustAnchor, X509Cache } from '../../attestation/x509/index.js';
import { ConfigError } from '../../shared/errors.js';

const NOW = new Date('2026-02-02T02:02:02.000Z');
const HOUR = 3_600_000;

let ca: SimulatedNitroCa;
let anchors: TrustAnchor[];
let doc: Uint8Array;

beforeAll(async () => {
  ca = await createSimulatedNitroCa({ now: new Date(NOW.getTime() - HOUR) });
  anchors = [...AWS_NITRO_TRUST_ANCHORS, simulatedNitroTrustAnchor(ca)];
  doc = await simulateNitroDocument(ca, { now: NOW });
});

afterEach(() => {
  vi.restoreAllMocks();
});

const verifyAt = (bytes: Uint8Array, now: Date, cache?: X509Cache) =>
  verifyNitroDocument(parseNitroDocument(bytes), {
    trustAnchors: anchors,
    now,
    ...(cache === undefined ? {} : { cache }),
  });

describe('X509Cache with verifyNitroDocument', () => {
  it('a hit skips the certificate signature checks (4 links verified once, then none)', () => {
    const cache = new X509Cache();
    const spy = vi.spyOn(X509Certificate.prototype, 'verify');
    const first = verifyAt(doc, NOW, cache);
    expect(spy).toHaveBeenCalledTimes(4); // leaf→int3→int2→int1→root; the root itself is pinned
    expect(cache.stats).toMatchObject({ linkMisses: 4, linkHits: 0 });
    spy.mockClear();
    const second = verifyAt(doc, NOW, cache);
    expect(spy).not.toHaveBeenCalled();
    expect(cache.stats).toMatchObject({ linkHits: 4 });
    expect(second).toEqual(first);
  });

  it('without a cache every call verifies every link', () => {
    const spy = vi.spyOn(X509Certificate.prototype, 'verify');
    verifyAt(doc, NOW);
    verifyAt(doc, NOW);
    expect(spy).toHaveBeenCalledTimes(8);
  });

  it('validity is re-checked on a hit: an expired leaf fails (CERT_EXPIRED) and its stale link is dropped', () => {
    const cache = new X509Cache();
    verifyAt(doc, NOW, cache);
    expect(cache.size.links).toBe(4);
    const later = new Date(NOW.getTime() + 3 * HOUR + 1000);
    expect(() => verifyAt(doc, later, cache)).toThrow(expect.objectContaining({ code: 'CERT_EXPIRED' }));
    expect(cache.stats.linksExpired).toBe(1);
    // The leaf→int3 link is gone (and was not re-inserted, since the leaf is past notAfter); the others stay.
    expect(cache.size.links).toBe(3);
  });

  it('validity is re-checked on a hit: before the leaf notBefore fails (CERT_NOT_YET_VALID)', () => {
    const cache = new X509Cache();
    verifyAt(doc, NOW, cache);
    expect(() => verifyAt(doc, new Date(NOW.getTime() - 1000), cache)).toThrow(
      expect.objectContaining({ code: 'CERT_NOT_YET_VALID' }),
    );
  });

  it('a cached chain does not let a document with a bad COSE signature through (EVIDENCE_SIGNATURE_INVALID)', () => {
    const cache = new X509Cache();
    verifyAt(doc, NOW, cache);
    const bad = Uint8Array.from(doc);
    bad[bad.length - 1]! ^= 0x01;
    expect(() => verifyAt(bad, NOW, cache)).toThrow(
      expect.objectContaining({ code: 'EVIDENCE_SIGNATURE_INVALID' }),
    );
  });

  it('a cached chain does not make a simulated document trusted without its anchor (CERT_ROOT_UNTRUSTED)', () => {
    const cache = new X509Cache();
    verifyAt(doc, NOW, cache);
    expect(() =>
      verifyNitroDocument(parseNitroDocument(doc), {
        trustAnchors: AWS_NITRO_TRUST_ANCHORS,
        now: NOW,
        cache,
      }),
    ).toThrow(expect.objectContaining({ code: 'CERT_ROOT_UNTRUSTED' }));
  });

  it('respects its bound: maps never exceed maxEntries, results stay correct', async () => {
    const cache = new X509Cache({ maxEntries: 3 });
    for (let i = 0; i < 4; i++) {
      const bytes = await simulateNitroDocument(ca, { now: NOW });
      expect(verifyAt(bytes, NOW, cache).simulated).toBe(true);
      expect(cache.size.links).toBeLessThanOrEqual(3);
      expect(cache.size.certificates).toBeLessThanOrEqual(3);
      expect(cache.size.pems).toBeLessThanOrEqual(3);
    }
  });

  it('does not cache failures: a broken link is verified (and rejected) on every call', async () => {
    const cache = new X509Cache();
    const fields = parseNitroDocument(doc);
    const broken = Uint8Array.from(fields.certificate);
    broken[broken.length - 1]! ^= 0x01;
    const { encodeNitroPayload, encodeCoseSign1, ES384_PROTECTED_HEADER } = await import(
      '../../attestation/nitro/index.js'
    );
    const payload = encodeNitroPayload({ ...fields, certificate: broken });
    const bad = encodeCoseSign1({
      protectedHeader: ES384_PROTECTED_HEADER,
      payload,
      signature: fields.signature,
    });
    const spy = vi.spyOn(X509Certificate.prototype, 'verify');
    expect(() => verifyAt(bad, NOW, cache)).toThrow(expect.objectContaining({ code: 'CERT_CHAIN_INVALID' }));
    expect(() => verifyAt(bad, NOW, cache)).toThrow(expect.objectContaining({ code: 'CERT_CHAIN_INVALID' }));
    expect(spy).toHaveBeenCalledTimes(2);
    expect(cache.size.links).toBe(0);
  });

  it('clear() empties the maps and the counters', () => {
    const cache = new X509Cache();
    verifyAt(doc, NOW, cache);
    cache.clear();
    expect(cache.size).toEqual({ certificates: 0, pems: 0, links: 0 });
    expect(cache.stats.linkHits + cache.stats.linkMisses).toBe(0);
  });

  it('rejects a bad maxEntries (ConfigError CONFIG_INVALID)', () => {
    for (const maxEntries of [0, -1, 1.5, 70_000, Number.NaN]) {
      expect(() => new X509Cache({ maxEntries })).toThrow(ConfigError);
    }
  });
});
