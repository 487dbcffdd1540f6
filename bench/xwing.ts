/**
 * Benchmark `xwing`: the X-Wing KEM of shared/xwing.ts (node:crypto X25519 + noble ML-KEM-768 + noble SHA3) and the
 * HPKE suite of shared/hpke.ts, each figure next to a baseline measured in the same run (style: figures beside a
 * baseline; design §7 expects ≈5× noble's `ml_kem768_x25519` for encaps/decaps).
 *
 * Rows (unit ops/s; ratio = value / baseline, so > 1 means the row's contender is faster than its baseline):
 * - `xwing.keygen`, `xwing.encaps`, `xwing.decaps.seed`: ours against noble's `ml_kem768_x25519` doing the same
 *   operation (decapsulation from the 32-byte seed, which both expand on every call).
 * - `xwing.keygen|encaps|decaps.seed.vs-components`: ours against the same library calls made bare, inline in this
 *   file (noble ML-KEM-768 and SHA3, node:crypto X25519 through JWK, as shared/xwing.ts calls them) without its
 *   checks, copies and zeroing: the cost of the wrapper itself. With the rows above, the X-Wing target (within 1.1×
 *   of the bare library call) is judged under both readings: X-Wing as one library call, and as the calls it is
 *   made of.
 * - `xwing.decaps.expanded`: our cached `XWingDecapsulationKey` (draft §5.5.1) against noble decapsulating from the
 *   seed: what a recipient that keeps its key object gains.
 * - `ml-kem-768.keygen|encaps|decaps`: bare noble ML-KEM-768 against our X-Wing keygen / encaps / expanded-key
 *   decaps: the ratio says how many ML-KEM-768 operations fit in one X-Wing operation (the cost of the X25519 half and the combiner).
 * - `ml-kem-1024.keygen|encaps|decaps`: noble ML-KEM-1024 against ML-KEM-768: the cost of the larger parameter set.
 * - `hpke.seal.32B`, `hpke.open.32B.seed|expanded`: single-shot HPKE of a 32-byte key against the bare X-Wing
 *   operation it wraps (so 1 - ratio is the share of the key schedule and AES-256-GCM).
 * - `hpke.seal.32B.vs-hpke-js`, `hpke.open.32B.vs-hpke-js`: our HPKE against @hpke/core + @hpke/hybridkem-x-wing
 *   (same suite, WebCrypto AES-GCM and HKDF), the independent implementation the tests interoperate with.
 *
 * Every contender's output is checked against its baseline's (or a round trip) once before it is timed. Contenders
 * take turns and are timed in CPU seconds (bench/envelope-harness.ts `measure`, called with bytes = 10^6 so that its
 * "MB/s" is operations per second); each figure is the median over the samples.
 *
 * Usage: `await benchXWing()` → BenchResult rows; register it in bench/index.ts as `xwing: () => benchXWing()`.
 */
import {
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { Aes256Gcm, CipherSuite, HkdfSha256 } from '@hpke/core';
import { XWing } from '@hpke/hybridkem-x-wing';
import { sha3_256, shake256 } from '@noble/hashes/sha3.js';
import { ml_kem768_x25519 } from '@noble/post-quantum/hybrid.js';
import { ml_kem768, ml_kem1024 } from '@noble/post-quantum/ml-kem.js';
import { hpkeOpen, hpkeSeal } from '../shared/hpke.js';
import { XWingDecapsulationKey, xwingDecapsulate, xwingEncapsulate, xwingKeygen } from '../shared/xwing.js';
import { assertSameBytes, type BenchResult, type Contender, measure, pairedRow } from './envelope-harness.js';

export type { BenchResult } from './envelope-harness.js';

/** Options of `benchXWing`. */
export interface BenchXWingOptions {
  /** Samples per contender, rounded up to an even number (rounds go in pairs); the median is reported (default 6). */
  readonly samples?: number;
  /** Target CPU time of one sample of each contender of a pair, in seconds (default 0.1). */
  readonly sampleSeconds?: number;
}

const OPS = 1e6; // `measure` reports bytes per CPU µs; with 10^6 "bytes" per run that is runs per CPU second.

const ab = (u: Uint8Array): ArrayBuffer =>
  u.buffer.slice(u.byteOffset, u.byteOffset + u.byteLength) as ArrayBuffer;

/** CPU seconds of one run of `fn` (a few runs, the fastest). */
async function secondsPerRun(fn: Contender['run']): Promise<number> {
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 3; i++) {
    const t0 = process.cpuUsage();
    await fn();
    const d = process.cpuUsage(t0);
    best = Math.min(best, (d.user + d.system) / 1e6);
  }
  return Math.max(best, 1e-6);
}

/** Times `value` and `baseline` in turns; returns the row (ratio from pairs of rounds: pairedRow). */
async function pair(
  id: string,
  value: Contender,
  baseline: Contender,
  { samples, sampleSeconds }: Required<BenchXWingOptions>,
): Promise<BenchResult> {
  // Each side gets ~sampleSeconds per sample: equal time, so neither side's garbage dwarfs the other's sample.
  const sized = async (x: Contender): Promise<Contender> => ({
    ...x,
    reps: Math.max(3, Math.round(sampleSeconds / (await secondsPerRun(x.run)))),
  });
  const figures = await measure(OPS, [await sized(value), await sized(baseline)], { reps: 3, samples });
  return pairedRow(id, 'ops/s', figures, value.name, baseline.name);
}

/*
 * X-Wing (draft-connolly-cfrg-xwing-kem §5) from the bare calls shared/xwing.ts makes, without its length, modulus and
 * low-order checks, its defensive copies and its zeroing: the baseline of the `.vs-components` rows. A benchmark
 * baseline only (checked equal to ours before it is timed), never used for keys.
 */
const XWING_LABEL = Uint8Array.of(0x5c, 0x2e, 0x2f, 0x2f, 0x5e, 0x5c);
const b64 = (u: Uint8Array): string =>
  Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString('base64url');
const bareX25519Private = (d: Uint8Array): KeyObject =>
  createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: b64(d), x: '' }, format: 'jwk' });
const bareX25519Public = (u: Uint8Array): KeyObject =>
  createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: b64(u) }, format: 'jwk' });
const bareRawPublic = (k: KeyObject): Uint8Array =>
  Buffer.from(createPublicKey(k).export({ format: 'jwk' }).x as string, 'base64url');
const bareCombine = (ssM: Uint8Array, ssX: Uint8Array, ctX: Uint8Array, pkX: Uint8Array): Uint8Array => {
  const input = new Uint8Array(134);
  input.set(ssM, 0);
  input.set(ssX, 32);
  input.set(ctX, 64);
  input.set(pkX, 96);
  input.set(XWING_LABEL, 128);
  return sha3_256(input);
};
function bareKeygen(seed: Uint8Array = randomBytes(32)): Uint8Array {
  const e = shake256(seed, { dkLen: 96 });
  const pk = new Uint8Array(1216);
  pk.set(ml_kem768.keygen(e.subarray(0, 64)).publicKey, 0);
  pk.set(bareRawPublic(bareX25519Private(e.subarray(64, 96))), 1184);
  return pk;
}
function bareEncaps(pk: Uint8Array): { ct: Uint8Array; ss: Uint8Array } {
  const { cipherText, sharedSecret } = ml_kem768.encapsulate(pk.subarray(0, 1184));
  const ek = generateKeyPairSync('x25519').privateKey;
  const ctX = bareRawPublic(ek);
  const pkX = pk.subarray(1184);
  const ssX = diffieHellman({ privateKey: ek, publicKey: bareX25519Public(pkX) });
  const ct = new Uint8Array(1120);
  ct.set(cipherText, 0);
  ct.set(ctX, 1088);
  return { ct, ss: bareCombine(sharedSecret, ssX, ctX, pkX) };
}
function bareDecapsSeed(ct: Uint8Array, seed: Uint8Array): Uint8Array {
  const e = shake256(seed, { dkLen: 96 });
  const { secretKey } = ml_kem768.keygen(e.subarray(0, 64));
  const xk = bareX25519Private(e.subarray(64, 96));
  const ctX = ct.subarray(1088);
  const ssM = ml_kem768.decapsulate(ct.subarray(0, 1088), secretKey);
  const ssX = diffieHellman({ privateKey: xk, publicKey: bareX25519Public(ctX) });
  return bareCombine(ssM, ssX, ctX, bareRawPublic(xk));
}

/** Runs the benchmark and returns its figures. */
export async function benchXWing(options: BenchXWingOptions = {}): Promise<BenchResult[]> {
  const opts = { samples: options.samples ?? 6, sampleSeconds: options.sampleSeconds ?? 0.1 };

  // Fixed inputs, and the sanity checks: ours equals noble on them.
  const seed = new Uint8Array(randomBytes(32));
  const eseed = new Uint8Array(randomBytes(64));
  const ours = xwingKeygen(seed);
  const noble = ml_kem768_x25519.keygen(seed);
  assertSameBytes('xwing keygen = noble keygen', ours.publicKey, noble.publicKey);
  const encOurs = xwingEncapsulate(ours.publicKey, { testOnlyEseed: eseed.slice() });
  const encNoble = ml_kem768_x25519.encapsulate(noble.publicKey, eseed.slice());
  assertSameBytes('xwing encaps ct = noble', encOurs.ciphertext, encNoble.cipherText);
  assertSameBytes('xwing encaps ss = noble', encOurs.sharedSecret, encNoble.sharedSecret);
  const ct = encOurs.ciphertext;
  const expanded = XWingDecapsulationKey.fromSecretKey(seed);
  assertSameBytes('xwing decaps (seed)', xwingDecapsulate(ct, seed), encOurs.sharedSecret);
  assertSameBytes('xwing decaps (expanded)', expanded.decapsulate(ct), encOurs.sharedSecret);
  assertSameBytes('noble decaps', ml_kem768_x25519.decapsulate(ct, noble.secretKey), encOurs.sharedSecret);
  assertSameBytes('bare keygen', bareKeygen(seed), ours.publicKey);
  assertSameBytes('bare decaps', bareDecapsSeed(ct, seed), encOurs.sharedSecret);
  const bareEnc = bareEncaps(ours.publicKey);
  assertSameBytes('bare encaps → xwing decaps', xwingDecapsulate(bareEnc.ct, seed), bareEnc.ss);

  const m768 = ml_kem768.keygen();
  const m768ct = ml_kem768.encapsulate(m768.publicKey).cipherText;
  const m1024 = ml_kem1024.keygen();
  const m1024ct = ml_kem1024.encapsulate(m1024.publicKey).cipherText;

  const info = new TextEncoder().encode('ekms/wrap-key v1 key=bench version=1');
  const aad = new Uint8Array(0);
  const pt = new Uint8Array(randomBytes(32));
  const sealed = hpkeSeal(ours.publicKey, info, aad, pt);
  assertSameBytes('hpke round trip (seed)', hpkeOpen(seed, sealed.enc, info, aad, sealed.ciphertext), pt);
  assertSameBytes(
    'hpke round trip (expanded)',
    hpkeOpen(expanded, sealed.enc, info, aad, sealed.ciphertext),
    pt,
  );

  const suite = new CipherSuite({ kem: new XWing(), kdf: new HkdfSha256(), aead: new Aes256Gcm() });
  const jsPublic = await suite.kem.importKey('raw', ab(ours.publicKey), true);
  const jsPrivate = await suite.kem.importKey('raw', ab(seed), false);
  const jsSealed = await suite.seal({ recipientPublicKey: jsPublic, info: ab(info) }, ab(pt), ab(aad));
  assertSameBytes(
    '@hpke seal → hpkeOpen',
    hpkeOpen(seed, new Uint8Array(jsSealed.enc), info, aad, new Uint8Array(jsSealed.ct)),
    pt,
  );
  const jsOpened = await suite.open(
    { recipientKey: jsPrivate, enc: ab(sealed.enc), info: ab(info) },
    ab(sealed.ciphertext),
    ab(aad),
  );
  assertSameBytes('hpkeSeal → @hpke open', new Uint8Array(jsOpened), pt);

  const c = (name: string, run: Contender['run']): Contender => ({ name, run });
  const xwEncaps = c('xwing encaps', () => xwingEncapsulate(ours.publicKey));
  const xwDecapsSeed = c('xwing decaps seed', () => xwingDecapsulate(ct, seed));
  const xwDecapsExpanded = c('xwing decaps expanded', () => expanded.decapsulate(ct));
  const nobleDecaps = c('noble decaps', () => ml_kem768_x25519.decapsulate(ct, noble.secretKey));
  const m768Encaps = c('ml-kem-768 encaps', () => ml_kem768.encapsulate(m768.publicKey));
  const m768Decaps = c('ml-kem-768 decaps', () => ml_kem768.decapsulate(m768ct, m768.secretKey));

  const rows: BenchResult[] = [];
  rows.push(
    await pair(
      'xwing.keygen',
      c('xwing keygen', () => xwingKeygen()),
      c('noble keygen', () => ml_kem768_x25519.keygen()),
      opts,
    ),
  );
  rows.push(
    await pair(
      'xwing.encaps',
      xwEncaps,
      c('noble encaps', () => ml_kem768_x25519.encapsulate(noble.publicKey)),
      opts,
    ),
  );
  rows.push(await pair('xwing.decaps.seed', xwDecapsSeed, nobleDecaps, opts));
  rows.push(
    await pair(
      'xwing.keygen.vs-components',
      c('xwing keygen', () => xwingKeygen()),
      c('bare keygen', () => bareKeygen()),
      opts,
    ),
  );
  rows.push(
    await pair(
      'xwing.encaps.vs-components',
      xwEncaps,
      c('bare encaps', () => bareEncaps(ours.publicKey)),
      opts,
    ),
  );
  rows.push(
    await pair(
      'xwing.decaps.seed.vs-components',
      xwDecapsSeed,
      c('bare decaps seed', () => bareDecapsSeed(ct, seed)),
      opts,
    ),
  );
  rows.push(await pair('xwing.decaps.expanded', xwDecapsExpanded, nobleDecaps, opts));
  const m768Keygen = c('ml-kem-768 keygen', () => ml_kem768.keygen());
  rows.push(
    await pair(
      'ml-kem-768.keygen',
      m768Keygen,
      c('xwing keygen', () => xwingKeygen()),
      opts,
    ),
  );
  rows.push(await pair('ml-kem-768.encaps', m768Encaps, xwEncaps, opts));
  rows.push(await pair('ml-kem-768.decaps', m768Decaps, xwDecapsExpanded, opts));
  rows.push(
    await pair(
      'ml-kem-1024.keygen',
      c('ml-kem-1024 keygen', () => ml_kem1024.keygen()),
      m768Keygen,
      opts,
    ),
  );
  rows.push(
    await pair(
      'ml-kem-1024.encaps',
      c('ml-kem-1024 encaps', () => ml_kem1024.encapsulate(m1024.publicKey)),
      m768Encaps,
      opts,
    ),
  );
  rows.push(
    await pair(
      'ml-kem-1024.decaps',
      c('ml-kem-1024 decaps', () => ml_kem1024.decapsulate(m1024ct, m1024.secretKey)),
      m768Decaps,
      opts,
    ),
  );
  const hpkeSealC = c('hpke seal', () => hpkeSeal(ours.publicKey, info, aad, pt));
  const hpkeOpenSeed = c('hpke open seed', () => hpkeOpen(seed, sealed.enc, info, aad, sealed.ciphertext));
  rows.push(await pair('hpke.seal.32B', hpkeSealC, xwEncaps, opts));
  rows.push(await pair('hpke.open.32B.seed', hpkeOpenSeed, xwDecapsSeed, opts));
  rows.push(
    await pair(
      'hpke.open.32B.expanded',
      c('hpke open expanded', () => hpkeOpen(expanded, sealed.enc, info, aad, sealed.ciphertext)),
      xwDecapsExpanded,
      opts,
    ),
  );
  rows.push(
    await pair(
      'hpke.seal.32B.vs-hpke-js',
      hpkeSealC,
      c('hpke-js seal', () => suite.seal({ recipientPublicKey: jsPublic, info: ab(info) }, ab(pt), ab(aad))),
      opts,
    ),
  );
  rows.push(
    await pair(
      'hpke.open.32B.vs-hpke-js',
      hpkeOpenSeed,
      c('hpke-js open', () =>
        suite.open(
          { recipientKey: jsPrivate, enc: ab(sealed.enc), info: ab(info) },
          ab(sealed.ciphertext),
          ab(aad),
        ),
      ),
      opts,
    ),
  );
  expanded.destroy();
  return rows;
}
