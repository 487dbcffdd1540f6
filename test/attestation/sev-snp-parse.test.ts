/**
 * parseSnpReport / encodeSnpReport: sizes, versions, algorithm, every reserved range, SIGNER_INFO, and
 * property tests (parse(encode(x)) = x; random bytes and mutations of a signed report always end in a typed
 * error, never a crash, a hang or an accepted report).
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { AttestationError } from '../../attestation/errors.js';
import {
  encodeSnpReport,
  parseSnpReport,
  SNP_OFFSETS,
  SNP_REPORT_SIZE,
  type SnpReportFields,
  type SnpReportVersion,
  SnpVerifierCache,
  snpProductReservedRanges,
  snpReservedRanges,
  verifySnpReport,
} from '../../attestation/sev-snp/index.js';
import {
  createSimulatedSnpCa,
  type SimulatedSnpCa,
  signSimulatedSnpReport,
  simulatedSnpTrustAnchor,
  simulateSnpReport,
} from '../../attestation/simulated/sev-snp.js';
import { EkmsError } from '../../shared/errors.js';
import { LIMITS } from '../../shared/limits.js';
import { runs } from '../helpers/property-runs.js';

const NOW = new Date('2026-11-28T12:00:00Z');

function catchError(fn: () => unknown): AttestationError {
  try {
    fn();
  } catch (err) {
    if (err instanceof AttestationError) return err;
    throw err;
  }
  throw new Error('expected an AttestationError, but the call succeeded');
}

function expectCode(fn: () => unknown, code: string, message?: RegExp): AttestationError {
  const err = catchError(fn);
  expect(err.code).toBe(code);
  if (message !== undefined) expect(err.message).toMatch(message);
  return err;
}

const hexOffset = (n: number): string => `0x${n.toString(16).padStart(3, '0')}`;

/** A structurally valid unsigned report of the given version (Milan CPUID for v3+). */
function blankReport(version: SnpReportVersion): Uint8Array {
  const fields: SnpReportFields = {
    version,
    guestSvn: 0,
    policy: 0x30000n,
    familyId: new Uint8Array(16),
    imageId: new Uint8Array(16),
    vmpl: 0,
    signatureAlgo: 1,
    currentTcb: 0n,
    platformInfo: 1n,
    signerInfo: { signingKey: 'vcek', maskChipKey: false, authorKeyEn: false },
    reportData: new Uint8Array(64),
    measurement: new Uint8Array(48),
    hostData: new Uint8Array(32),
    idKeyDigest: new Uint8Array(48),
    authorKeyDigest: new Uint8Array(48),
    reportId: new Uint8Array(32),
    reportIdMa: new Uint8Array(32),
    reportedTcb: 0n,
    cpuid: version >= 3 ? { family: 0x19, model: 0x01, stepping: 1 } : null,
    chipId: new Uint8Array(64),
    committedTcb: 0n,
    currentVersion: { major: 1, minor: 55, build: 0 },
    committedVersion: { major: 1, minor: 55, build: 0 },
    launchTcb: 0n,
    launchMitVector: version >= 5 ? 0n : null,
    currentMitVector: version >= 5 ? 0n : null,
    signatureR: new Uint8Array(72),
    signatureS: new Uint8Array(72),
  };
  return encodeSnpReport(fields);
}

const VERSIONS: readonly SnpReportVersion[] = [2, 3, 5];

describe('parseSnpReport sizes', () => {
  it('rejects a truncated report (EVIDENCE_TRUNCATED)', () => {
    expectCode(
      () => parseSnpReport(blankReport(3).subarray(0, SNP_REPORT_SIZE - 1)),
      'EVIDENCE_TRUNCATED',
      /1183 bytes/,
    );
    expectCode(() => parseSnpReport(new Uint8Array(0)), 'EVIDENCE_TRUNCATED');
  });

  it('rejects 1185 bytes (EVIDENCE_TRAILING_BYTES)', () => {
    const long = new Uint8Array(SNP_REPORT_SIZE + 1);
    long.set(blankReport(3));
    expectCode(() => parseSnpReport(long), 'EVIDENCE_TRAILING_BYTES', /1 byte\(s\) follow/);
  });

  it('rejects a report larger than LIMITS.maxEvidenceBytes (EVIDENCE_TOO_LARGE)', () => {
    expectCode(() => parseSnpReport(new Uint8Array(LIMITS.maxEvidenceBytes + 1)), 'EVIDENCE_TOO_LARGE');
    expectCode(() => parseSnpReport(new Uint8Array(10 * 1024 * 1024)), 'EVIDENCE_TOO_LARGE');
  });

  it('says when the input looks base64- or hex-encoded', () => {
    const report = blankReport(3);
    expectCode(
      () => parseSnpReport(Buffer.from(Buffer.from(report).toString('base64'))),
      'EVIDENCE_TRAILING_BYTES',
      /base64/,
    );
    expectCode(
      () => parseSnpReport(Buffer.from(Buffer.from(report).toString('hex'))),
      'EVIDENCE_TRAILING_BYTES',
      /hex/,
    );
  });

  it('rejects a value that is not a byte array (EVIDENCE_MALFORMED)', () => {
    expectCode(() => parseSnpReport('not bytes' as unknown as Uint8Array), 'EVIDENCE_MALFORMED');
  });

  it('copies the input', () => {
    const report = blankReport(3);
    const e = parseSnpReport(report);
    report[SNP_OFFSETS.measurement] = 0xaa;
    expect(e.bytes[SNP_OFFSETS.measurement]).toBe(0);
    expect(e.measurement[0]).toBe(0);
  });
});

describe('parseSnpReport version and algorithm', () => {
  it.each([0, 1, 4, 6, 0xffff_ffff])('rejects version %i (EVIDENCE_VERSION_UNSUPPORTED)', (version) => {
    const report = blankReport(3);
    new DataView(report.buffer).setUint32(SNP_OFFSETS.version, version, true);
    expectCode(
      () => parseSnpReport(report),
      'EVIDENCE_VERSION_UNSUPPORTED',
      new RegExp(`version ${version} `),
    );
  });

  it.each([0, 2, 0x101])('rejects SIGNATURE_ALGO %i (EVIDENCE_ALGORITHM_UNSUPPORTED)', (algo) => {
    const report = blankReport(3);
    new DataView(report.buffer).setUint32(SNP_OFFSETS.signatureAlgo, algo, true);
    expectCode(() => parseSnpReport(report), 'EVIDENCE_ALGORITHM_UNSUPPORTED', /only 1 \(ECDSA P-384/);
  });

  it.each(VERSIONS)('accepts version %i with every reserved byte zero', (version) => {
    const e = parseSnpReport(blankReport(version));
    expect(e.version).toBe(version);
    expect(e.cpuid === null).toBe(version === 2);
    expect(e.launchMitVector === null).toBe(version !== 5);
  });
});

describe('parseSnpReport reserved ranges', () => {
  it('are the ranges of the ABI table, per version (pinned here independently of layout.ts)', () => {
    const common = [
      [0x04c, 0x050],
      [0x1eb, 0x1ec],
      [0x1ef, 0x1f0],
      [0x330, 0x4a0],
    ];
    const byVersion: Record<SnpReportVersion, number[][]> = {
      2: [...common, [0x188, 0x1a0], [0x1f8, 0x2a0]],
      3: [...common, [0x18b, 0x1a0], [0x1f8, 0x2a0]],
      5: [...common, [0x18b, 0x1a0], [0x208, 0x2a0]],
    };
    const sort = (r: number[][]) => [...r].sort((a, b) => a[0]! - b[0]!);
    for (const version of VERSIONS) {
      expect(sort(snpReservedRanges(version).map((r) => [r.start, r.end]))).toEqual(sort(byVersion[version]));
    }
  });

  it('product ranges: reserved TCB bytes (Milan/Genoa [2..5], Turin [4..6]) and the Turin CHIP_ID tail', () => {
    const tcbOffsets = [0x038, 0x180, 0x1e0, 0x1f0];
    const pairs = (product: 'Milan' | 'Genoa' | 'Turin') =>
      snpProductReservedRanges(product).map((r) => [r.start, r.end]);
    const milan = tcbOffsets.map((o) => [o + 2, o + 6]);
    expect(pairs('Milan')).toEqual(milan);
    expect(pairs('Genoa')).toEqual(milan);
    expect(pairs('Turin')).toEqual([
      ...tcbOffsets.slice(0, 2).map((o) => [o + 4, o + 7]),
      [0x1a8, 0x1e0],
      ...tcbOffsets.slice(2).map((o) => [o + 4, o + 7]),
    ]);
  });

  it('rejects every non-zero byte after the signature R and S (0x330..0x49f)', () => {
    for (let offset = 0x330; offset < SNP_REPORT_SIZE; offset++) {
      const report = blankReport(3);
      report[offset] = 0xff;
      expectCode(() => parseSnpReport(report), 'EVIDENCE_RESERVED_NONZERO', new RegExp(hexOffset(offset)));
    }
  });

  for (const version of VERSIONS) {
    for (const range of snpReservedRanges(version)) {
      const offsets = [...new Set([range.start, (range.start + range.end - 1) >> 1, range.end - 1])];
      it(`v${version}: rejects a non-zero byte in ${range.name} (${hexOffset(range.start)}..${hexOffset(range.end - 1)})`, () => {
        for (const offset of offsets) {
          const report = blankReport(version);
          report[offset] = 0x01;
          const err = expectCode(
            () => parseSnpReport(report),
            'EVIDENCE_RESERVED_NONZERO',
            new RegExp(hexOffset(offset)),
          );
          expect(err.details?.['offset']).toBe(offset);
        }
      });
    }
  }

  it('v3 (CPUID Milan): rejects non-zero reserved bytes inside each TCB_VERSION', () => {
    for (const range of snpProductReservedRanges('Milan')) {
      const report = blankReport(3);
      report[range.start] = 0x01;
      expectCode(
        () => parseSnpReport(report),
        'EVIDENCE_RESERVED_NONZERO',
        new RegExp(hexOffset(range.start)),
      );
    }
  });

  it('v3 (CPUID Turin): rejects CHIP_ID bytes after the 8-byte Turin id and reserved TCB bytes', () => {
    const ranges = snpProductReservedRanges('Turin');
    expect(ranges.some((r) => r.start === SNP_OFFSETS.chipId + 8 && r.end === SNP_OFFSETS.chipId + 64)).toBe(
      true,
    );
    for (const range of ranges) {
      const report = blankReport(3);
      report[SNP_OFFSETS.cpuidFamily] = 0x1a;
      report[SNP_OFFSETS.cpuidModel] = 0x02;
      expect(parseSnpReport(report).product).toBe('Turin');
      report[range.end - 1] = 0x80;
      expectCode(
        () => parseSnpReport(report),
        'EVIDENCE_RESERVED_NONZERO',
        new RegExp(hexOffset(range.end - 1)),
      );
    }
  });

  it.each([5, 17, 31])('rejects SIGNER_INFO reserved bit %i (EVIDENCE_RESERVED_NONZERO)', (bit) => {
    const report = blankReport(3);
    const view = new DataView(report.buffer);
    view.setUint32(SNP_OFFSETS.signerInfo, (1 << bit) >>> 0, true);
    expectCode(() => parseSnpReport(report), 'EVIDENCE_RESERVED_NONZERO', /SIGNER_INFO at offset 0x048/);
  });

  it.each([2, 3, 4, 5, 6, 7])('rejects SIGNING_KEY %i (EVIDENCE_FIELD_INVALID)', (value) => {
    const report = blankReport(3);
    new DataView(report.buffer).setUint32(SNP_OFFSETS.signerInfo, value << 2, true);
    expectCode(() => parseSnpReport(report), 'EVIDENCE_FIELD_INVALID', new RegExp(`SIGNING_KEY is ${value}`));
  });

  it('decodes SIGNER_INFO flags', () => {
    const report = blankReport(3);
    new DataView(report.buffer).setUint32(SNP_OFFSETS.signerInfo, (1 << 2) | 0b11, true);
    expect(parseSnpReport(report).signerInfo).toEqual({
      signingKey: 'vlek',
      maskChipKey: true,
      authorKeyEn: true,
    });
  });
});

const bytesArb = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const u64 = fc.bigInt({ min: 0n, max: 0xffff_ffff_ffff_ffffn });
const fwArb = fc.record({ major: fc.nat(255), minor: fc.nat(255), build: fc.nat(255) });

const fieldsArb: fc.Arbitrary<SnpReportFields> = fc
  .record({
    version: fc.constantFrom<SnpReportVersion>(2, 3, 5),
    guestSvn: u32,
    policy: u64,
    familyId: bytesArb(16),
    imageId: bytesArb(16),
    vmpl: u32,
    currentTcb: u64,
    platformInfo: u64,
    signingKey: fc.constantFrom<'vcek' | 'vlek'>('vcek', 'vlek'),
    maskChipKey: fc.boolean(),
    authorKeyEn: fc.boolean(),
    reportData: bytesArb(64),
    measurement: bytesArb(48),
    hostData: bytesArb(32),
    idKeyDigest: bytesArb(48),
    authorKeyDigest: bytesArb(48),
    reportId: bytesArb(32),
    reportIdMa: bytesArb(32),
    reportedTcb: u64,
    // family 0x17 is not an SEV-SNP product, so no product-specific reserved bytes apply
    model: fc.nat(255),
    stepping: fc.nat(255),
    chipId: bytesArb(64),
    committedTcb: u64,
    currentVersion: fwArb,
    committedVersion: fwArb,
    launchTcb: u64,
    launchMit: u64,
    currentMit: u64,
    signatureR: bytesArb(72),
    signatureS: bytesArb(72),
  })
  .map((r) => ({
    version: r.version,
    guestSvn: r.guestSvn,
    policy: r.policy,
    familyId: r.familyId,
    imageId: r.imageId,
    vmpl: r.vmpl,
    signatureAlgo: 1,
    currentTcb: r.currentTcb,
    platformInfo: r.platformInfo,
    signerInfo: { signingKey: r.signingKey, maskChipKey: r.maskChipKey, authorKeyEn: r.authorKeyEn },
    reportData: r.reportData,
    measurement: r.measurement,
    hostData: r.hostData,
    idKeyDigest: r.idKeyDigest,
    authorKeyDigest: r.authorKeyDigest,
    reportId: r.reportId,
    reportIdMa: r.reportIdMa,
    reportedTcb: r.reportedTcb,
    cpuid: r.version >= 3 ? { family: 0x17, model: r.model, stepping: r.stepping } : null,
    chipId: r.chipId,
    committedTcb: r.committedTcb,
    currentVersion: r.currentVersion,
    committedVersion: r.committedVersion,
    launchTcb: r.launchTcb,
    launchMitVector: r.version >= 5 ? r.launchMit : null,
    currentMitVector: r.version >= 5 ? r.currentMit : null,
    signatureR: r.signatureR,
    signatureS: r.signatureS,
  }));

describe('SEV-SNP report properties', () => {
  it('parse(encode(x)) = x and encode(parse(b)) = b', () => {
    fc.assert(
      fc.property(fieldsArb, (fields) => {
        const bytes = encodeSnpReport(fields);
        const { type, bytes: copy, product, ...parsed } = parseSnpReport(bytes);
        expect(type).toBe('sev-snp');
        expect(product).toBeNull();
        expect(parsed).toEqual(fields);
        expect(Buffer.from(encodeSnpReport(parsed)).equals(Buffer.from(copy))).toBe(true);
      }),
      { numRuns: runs(300) },
    );
  });

  it('random bytes of any length never crash parseSnpReport: a typed error or evidence', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ minLength: 0, maxLength: 2 * SNP_REPORT_SIZE }),
          bytesArb(SNP_REPORT_SIZE),
          bytesArb(SNP_REPORT_SIZE).map((b) => {
            b.set([2, 0, 0, 0], 0); // a plausible version
            b.set([1, 0, 0, 0], SNP_OFFSETS.signatureAlgo);
            return b;
          }),
        ),
        (bytes) => {
          try {
            expect(parseSnpReport(bytes).bytes.length).toBe(SNP_REPORT_SIZE);
          } catch (err) {
            expect(err).toBeInstanceOf(AttestationError);
          }
        },
      ),
      { numRuns: runs(2000) },
    );
  });

  describe('mutations of a signed simulated report', () => {
    let ca: SimulatedSnpCa;
    let report: Uint8Array;
    const cache = new SnpVerifierCache();
    beforeAll(async () => {
      ca = await createSimulatedSnpCa({ now: NOW, product: 'Milan' });
      report = simulateSnpReport(ca, { measurement: 'cd'.repeat(48), reportData: 'ef'.repeat(64) });
    });
    const verify = (bytes: Uint8Array) =>
      verifySnpReport(parseSnpReport(bytes), {
        trustAnchors: [simulatedSnpTrustAnchor(ca)],
        now: NOW,
        vek: ca.vcek,
        cache,
      });

    it('the unmutated report verifies', () => {
      expect(verify(report).measurement).toBe('cd'.repeat(48));
    });

    it('every byte change, truncation or extension ends in a typed error, never acceptance', () => {
      const mutation = fc.oneof(
        fc.record({
          kind: fc.constant('flip' as const),
          at: fc.nat(SNP_REPORT_SIZE - 1),
          mask: fc.integer({ min: 1, max: 255 }),
        }),
        fc.record({
          kind: fc.constant('truncate' as const),
          at: fc.nat(SNP_REPORT_SIZE - 1),
          mask: fc.constant(0),
        }),
        fc.record({
          kind: fc.constant('extend' as const),
          at: fc.integer({ min: 1, max: 64 }),
          mask: fc.nat(255),
        }),
      );
      fc.assert(
        fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (mutations) => {
          let bytes = report.slice();
          for (const m of mutations) {
            if (m.kind === 'flip') bytes[m.at]! ^= m.mask;
            else if (m.kind === 'truncate') bytes = bytes.subarray(0, m.at);
            else bytes = Uint8Array.from([...bytes, ...new Uint8Array(m.at).fill(m.mask)]);
          }
          const changed = bytes.length !== report.length || !Buffer.from(bytes).equals(Buffer.from(report));
          try {
            verify(bytes);
          } catch (err) {
            expect(err).toBeInstanceOf(EkmsError);
            expect(err).toBeInstanceOf(AttestationError);
            return;
          }
          expect(changed).toBe(false); // only an unchanged report may verify
        }),
        { numRuns: runs(600) },
      );
    });

    it('a re-signed report with any reserved byte set is still rejected (EVIDENCE_RESERVED_NONZERO)', () => {
      for (const version of VERSIONS) {
        const base = simulateSnpReport(ca, { version });
        const ranges = [...snpReservedRanges(version), ...snpProductReservedRanges('Milan')];
        for (const range of ranges) {
          const bytes = base.slice();
          bytes[range.start] = 0x01;
          // bytes before 0x2A0 are signed: re-sign so that only the reserved byte is wrong
          const signed = range.start < 0x2a0 ? signSimulatedSnpReport(ca, bytes) : bytes;
          if (range.start < 0x2a0) expect(signed[range.start]).toBe(0x01);
          expectCode(() => verify(signed), 'EVIDENCE_RESERVED_NONZERO', new RegExp(hexOffset(range.start)));
        }
      }
    });
  });
});
