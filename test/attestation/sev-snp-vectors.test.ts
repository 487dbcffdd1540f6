/**
 * Real AMD SEV-SNP reports (../shared/vectors/sev-snp, read in place, never copied): each verifies with its
 * VEK at a time inside the VEK's validity and yields its sidecar's fields; each is rejected after the VEK
 * expired; the embedded roots are pinned against the manifest. Provenance is in manifest.json.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AttestationError } from '../../attestation/errors.js';
import {
  AMD_GENOA_ARK_SHA256,
  AMD_MILAN_ARK_PEM,
  AMD_MILAN_ARK_SHA256,
  AMD_SNP_ROOTS,
  AMD_SNP_TRUST_ANCHORS,
  AMD_TURIN_ARK_SHA256,
  decodeSnpTcb,
  parseSnpReport,
  SNP_PRODUCTS,
  type SnpProduct,
  type SnpTrustAnchor,
  verifySnpReport,
} from '../../attestation/sev-snp/index.js';

const VECTORS = path.resolve(import.meta.dirname, '../../../shared/vectors/sev-snp');
const present = fs.existsSync(path.join(VECTORS, 'manifest.json'));

interface TcbJson {
  readonly raw: string;
  readonly fmc?: number;
  readonly bootloader: number;
  readonly tee: number;
  readonly snp: number;
  readonly microcode: number;
}

interface Sidecar {
  readonly file: string;
  readonly product: SnpProduct;
  readonly version: number;
  readonly guest_svn: number;
  readonly policy: string;
  readonly policy_debug: boolean;
  readonly family_id: string;
  readonly image_id: string;
  readonly vmpl: number;
  readonly signing_key: 'VCEK' | 'VLEK';
  readonly author_key_en: boolean;
  readonly mask_chip_key: boolean;
  readonly measurement: string;
  readonly report_data: string;
  readonly host_data: string;
  readonly id_key_digest: string;
  readonly author_key_digest: string;
  readonly report_id: string;
  readonly report_id_ma: string;
  readonly cpuid_fam_mod_step: { family: string; model: string; stepping: number } | null;
  readonly current_tcb: TcbJson;
  readonly reported_tcb: TcbJson;
  readonly committed_tcb: TcbJson;
  readonly launch_tcb: TcbJson;
  readonly current_version: string;
  readonly committed_version: string;
  readonly launch_mit_vector: number | null;
  readonly current_mit_vector: number | null;
  readonly chip_id: string;
  readonly chain: { vek: string; intermediate: string; root: string };
  readonly vek_not_before: string;
  readonly vek_not_after: string;
}

interface Manifest {
  readonly roots: Record<string, { cert_sha256: string; subject_cn: string }>;
  readonly reports: readonly { file: string; sidecar: string; product: SnpProduct }[];
}

const read = (name: string): Buffer => fs.readFileSync(path.join(VECTORS, name));
const manifest: Manifest | null = present
  ? (JSON.parse(read('manifest.json').toString('utf8')) as Manifest)
  : null;
const sidecars: Sidecar[] = (manifest?.reports ?? []).map(
  (r) => JSON.parse(read(r.sidecar).toString('utf8')) as Sidecar,
);
const bySidecar = (file: string): Sidecar => {
  const found = sidecars.find((s) => s.file === file);
  if (found === undefined) throw new Error(`no sidecar for ${file}`);
  return found;
};

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

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
const pemDer = (pem: string): Buffer =>
  Buffer.from(pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, ''), 'base64');

const midpoint = (s: Sidecar): Date =>
  new Date((Date.parse(s.vek_not_before) + Date.parse(s.vek_not_after)) / 2);

function verifyVector(s: Sidecar, now: Date, anchors: readonly SnpTrustAnchor[] = AMD_SNP_TRUST_ANCHORS) {
  return verifySnpReport(parseSnpReport(read(s.file)), {
    trustAnchors: anchors,
    now,
    vek: read(s.chain.vek).toString('utf8'),
  });
}

function tcbOf(json: TcbJson) {
  const { raw: _raw, ...components } = json;
  return components;
}

describe('SEV-SNP embedded AMD roots', () => {
  it('fingerprint constants are the SHA-256 of the embedded PEM', () => {
    for (const product of SNP_PRODUCTS) {
      const roots = AMD_SNP_ROOTS[product];
      expect(sha256(pemDer(roots.ark))).toBe(roots.arkSha256);
      expect(sha256(pemDer(roots.ask))).toBe(roots.askSha256);
      expect(sha256(pemDer(roots.asvk))).toBe(roots.asvkSha256);
    }
    expect(AMD_SNP_TRUST_ANCHORS.map((a) => a.product)).toEqual(['Milan', 'Genoa', 'Turin']);
    expect(AMD_SNP_TRUST_ANCHORS.some((a) => a.simulated === true)).toBe(false);
  });

  it.skipIf(!present)(
    'are pinned against manifest.json cert_sha256 (skipped: ../shared/vectors absent)',
    () => {
      for (const product of SNP_PRODUCTS) {
        const lower = product.toLowerCase();
        const roots = AMD_SNP_ROOTS[product];
        for (const [kind, pin] of [
          ['ark', roots.arkSha256],
          ['ask', roots.askSha256],
          ['asvk', roots.asvkSha256],
        ] as const) {
          const entry = manifest!.roots[`${lower}-${kind}.pem`];
          expect(entry, `${lower}-${kind}.pem in manifest`).toBeDefined();
          expect(pin, `${product} ${kind}`).toBe(entry!.cert_sha256);
          expect(sha256(pemDer(read(`${lower}-${kind}.pem`).toString('utf8')))).toBe(pin);
        }
      }
      expect([AMD_MILAN_ARK_SHA256, AMD_GENOA_ARK_SHA256, AMD_TURIN_ARK_SHA256]).toEqual([
        manifest!.roots['milan-ark.pem']!.cert_sha256,
        manifest!.roots['genoa-ark.pem']!.cert_sha256,
        manifest!.roots['turin-ark.pem']!.cert_sha256,
      ]);
    },
  );
});

describe.skipIf(!present)('SEV-SNP real reports (../shared/vectors/sev-snp; skipped when absent)', () => {
  it('the manifest lists every report in the folder (12 when this was written)', () => {
    const bins = fs.readdirSync(VECTORS).filter((f) => f.endsWith('.bin'));
    expect(manifest!.reports.map((r) => r.file).sort()).toEqual(bins.sort());
    expect(sidecars.length).toBe(bins.length);
    expect(sidecars.length).toBeGreaterThanOrEqual(12);
  });

  describe.each(sidecars.map((s) => [s.file, s] as const))('%s', (_name, s) => {
    it('parses to the sidecar fields', () => {
      const e = parseSnpReport(read(s.file));
      const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
      expect(e.version).toBe(s.version);
      expect(e.guestSvn).toBe(s.guest_svn);
      expect(`0x${e.policy.toString(16)}`).toBe(s.policy);
      expect(hex(e.familyId)).toBe(s.family_id);
      expect(hex(e.imageId)).toBe(s.image_id);
      expect(e.vmpl).toBe(s.vmpl);
      expect(e.signerInfo).toEqual({
        signingKey: s.signing_key.toLowerCase(),
        maskChipKey: s.mask_chip_key,
        authorKeyEn: s.author_key_en,
      });
      expect(hex(e.measurement)).toBe(s.measurement);
      expect(hex(e.reportData)).toBe(s.report_data);
      expect(hex(e.hostData)).toBe(s.host_data);
      expect(hex(e.idKeyDigest)).toBe(s.id_key_digest);
      expect(hex(e.authorKeyDigest)).toBe(s.author_key_digest);
      expect(hex(e.reportId)).toBe(s.report_id);
      expect(hex(e.reportIdMa)).toBe(s.report_id_ma);
      expect(hex(e.chipId)).toBe(s.chip_id);
      expect(`0x${e.reportedTcb.toString(16).padStart(16, '0')}`).toBe(s.reported_tcb.raw);
      expect(`0x${e.currentTcb.toString(16).padStart(16, '0')}`).toBe(s.current_tcb.raw);
      expect(`0x${e.committedTcb.toString(16).padStart(16, '0')}`).toBe(s.committed_tcb.raw);
      expect(`0x${e.launchTcb.toString(16).padStart(16, '0')}`).toBe(s.launch_tcb.raw);
      const v = (f: { major: number; minor: number; build: number }): string =>
        `${f.major}.${f.minor}.${f.build}`;
      expect(v(e.currentVersion)).toBe(s.current_version);
      expect(v(e.committedVersion)).toBe(s.committed_version);
      expect(e.launchMitVector === null ? null : Number(e.launchMitVector)).toBe(s.launch_mit_vector);
      expect(e.currentMitVector === null ? null : Number(e.currentMitVector)).toBe(s.current_mit_vector);
      if (s.cpuid_fam_mod_step === null) {
        expect(e.cpuid).toBeNull();
        expect(e.product).toBeNull();
      } else {
        expect(e.cpuid).toEqual({
          family: Number.parseInt(s.cpuid_fam_mod_step.family, 16),
          model: Number.parseInt(s.cpuid_fam_mod_step.model, 16),
          stepping: s.cpuid_fam_mod_step.stepping,
        });
        expect(e.product).toBe(s.product);
      }
      expect(decodeSnpTcb(e.reportedTcb, s.product)).toEqual(tcbOf(s.reported_tcb));
    });

    it('verifies with its VEK inside the VEK validity and yields the sidecar fields', () => {
      const c = verifyVector(s, midpoint(s));
      expect(c.type).toBe('sev-snp');
      expect(c.product).toBe(s.product);
      expect(c.version).toBe(s.version);
      expect(c.measurement).toBe(s.measurement);
      expect(c.reportData).toBe(s.report_data);
      expect(c.hostData).toBe(s.host_data);
      expect(c.vmpl).toBe(s.vmpl);
      expect(c.policy).toBe(s.policy);
      expect(c.debug).toBe(s.policy_debug);
      expect(c.chipId).toBe(s.chip_id);
      expect(c.signingKey).toBe(s.signing_key.toLowerCase());
      expect(c.reportedTcb).toEqual(tcbOf(s.reported_tcb));
      expect(c.currentTcb).toEqual(tcbOf(s.current_tcb));
      expect(c.committedTcb).toEqual(tcbOf(s.committed_tcb));
      expect(c.launchTcb).toEqual(tcbOf(s.launch_tcb));
      expect(c.guestSvn).toBe(s.guest_svn);
      expect(c.reportId).toBe(s.report_id);
      expect(c.timestamp).toBeNull();
      expect(c.simulated).toBe(false);
      expect(c.rootFingerprint).toBe(manifest!.roots[s.chain.root]!.cert_sha256);
      expect(JSON.parse(JSON.stringify(c))).toEqual(c);
    });

    it('is rejected after its VEK expired (CERT_EXPIRED)', () => {
      const after = new Date(Date.parse(s.vek_not_after) + 1000);
      expectCode(
        () => verifyVector(s, after),
        'CERT_EXPIRED',
        new RegExp(`${s.signing_key} certificate .* expired`),
      );
    });

    it('is rejected before its VEK is valid (CERT_NOT_YET_VALID)', () => {
      const before = new Date(Date.parse(s.vek_not_before) - 1000);
      expectCode(() => verifyVector(s, before), 'CERT_NOT_YET_VALID', /not valid before/);
    });

    it('is rejected when its product has no trust anchor (CERT_ROOT_UNTRUSTED)', () => {
      const others = AMD_SNP_TRUST_ANCHORS.filter((a) => a.product !== s.product);
      expectCode(() => verifyVector(s, midpoint(s), others), 'CERT_ROOT_UNTRUSTED');
    });
  });

  it('rejects a real report with a flipped signature bit (EVIDENCE_SIGNATURE_INVALID)', () => {
    const s = bySidecar('trustee-az-2.bin');
    const bytes = Buffer.from(read(s.file));
    bytes[0x2a0 + 5]! ^= 0x01;
    expectCode(
      () =>
        verifySnpReport(parseSnpReport(bytes), {
          trustAnchors: AMD_SNP_TRUST_ANCHORS,
          now: midpoint(s),
          vek: read(s.chain.vek),
        }),
      'EVIDENCE_SIGNATURE_INVALID',
      /does not verify/,
    );
  });

  it('rejects a real report with a flipped MEASUREMENT bit (EVIDENCE_SIGNATURE_INVALID)', () => {
    const s = bySidecar('openanolis-trustee-1.bin');
    const bytes = Buffer.from(read(s.file));
    bytes[0x90]! ^= 0x80;
    expectCode(
      () =>
        verifySnpReport(parseSnpReport(bytes), {
          trustAnchors: AMD_SNP_TRUST_ANCHORS,
          now: midpoint(s),
          vek: read(s.chain.vek),
        }),
      'EVIDENCE_SIGNATURE_INVALID',
    );
  });

  it('rejects a real report verified with the VCEK of another chip (CHIP_ID_MISMATCH)', () => {
    const s = bySidecar('trustee-az-2.bin');
    const other = bySidecar('trustee-az-4.bin'); // same product and TCB, another chip
    expect(other.reported_tcb.raw).toBe(s.reported_tcb.raw);
    expect(other.chip_id).not.toBe(s.chip_id);
    expectCode(
      () =>
        verifySnpReport(parseSnpReport(read(s.file)), {
          trustAnchors: AMD_SNP_TRUST_ANCHORS,
          now: midpoint(s),
          vek: read(other.chain.vek),
        }),
      'CHIP_ID_MISMATCH',
      /hwID [0-9a-f]+ differs from the report's CHIP_ID/,
    );
  });

  it('rejects a real VLEK-signed report verified with a VCEK chain (SIGNING_KEY_MISMATCH)', () => {
    const vlekReport = bySidecar('trustee-3.bin');
    const vcek = bySidecar('trustee-az-2.bin');
    expectCode(
      () =>
        verifySnpReport(parseSnpReport(read(vlekReport.file)), {
          trustAnchors: AMD_SNP_TRUST_ANCHORS,
          now: midpoint(vcek),
          vek: read(vcek.chain.vek),
        }),
      'SIGNING_KEY_MISMATCH',
      /signed by the VLEK, but the certificate is a VCEK/,
    );
  });

  it('rejects a real VCEK-signed report verified with a VLEK chain (SIGNING_KEY_MISMATCH)', () => {
    const vcekReport = bySidecar('trustee-az-2.bin');
    const vlek = bySidecar('trustee-3.bin');
    expectCode(
      () =>
        verifySnpReport(parseSnpReport(read(vcekReport.file)), {
          trustAnchors: AMD_SNP_TRUST_ANCHORS,
          now: midpoint(vlek),
          vek: read(vlek.chain.vek),
        }),
      'SIGNING_KEY_MISMATCH',
      /signed by the VCEK, but the certificate is a VLEK/,
    );
  });

  it('rejects a real VCEK whose signature was broken (CERT_CHAIN_INVALID)', () => {
    const s = bySidecar('trustee-1.bin');
    const der = pemDer(read(s.chain.vek).toString('utf8'));
    der[der.length - 10]! ^= 0x01;
    expectCode(
      () =>
        verifySnpReport(parseSnpReport(read(s.file)), {
          trustAnchors: AMD_SNP_TRUST_ANCHORS,
          now: midpoint(s),
          vek: der,
        }),
      'CERT_CHAIN_INVALID',
      /VCEK certificate's signature does not verify under "SEV-Milan"/,
    );
  });

  it('rejects a real ASK whose signature was broken (CERT_CHAIN_INVALID)', () => {
    const s = bySidecar('trustee-1.bin');
    const ask = pemDer(read('milan-ask.pem').toString('utf8'));
    ask[ask.length - 10]! ^= 0x01;
    expectCode(
      () =>
        verifySnpReport(parseSnpReport(read(s.file)), {
          trustAnchors: [{ product: 'Milan', ark: AMD_MILAN_ARK_PEM }],
          intermediates: [ask],
          now: midpoint(s),
          vek: read(s.chain.vek),
        }),
      'CERT_CHAIN_INVALID',
      /SEV-Milan certificate's signature does not verify under the trusted Milan ARK/,
    );
  });

  it('rejects a product that contradicts the CPUID fields (EVIDENCE_FIELD_INVALID)', () => {
    const s = bySidecar('trustee-2.bin');
    expectCode(
      () =>
        verifySnpReport(parseSnpReport(read(s.file)), {
          trustAnchors: AMD_SNP_TRUST_ANCHORS,
          now: midpoint(s),
          vek: read(s.chain.vek),
          product: 'Milan',
        }),
      'EVIDENCE_FIELD_INVALID',
      /CPUID names Genoa, but Milan was expected/,
    );
  });

  it('uses an explicit product for a version 2 report (wrong product: CERT_ROOT_UNTRUSTED)', () => {
    const s = bySidecar('trustee-1.bin');
    const opts = { trustAnchors: AMD_SNP_TRUST_ANCHORS, now: midpoint(s), vek: read(s.chain.vek) };
    expect(verifySnpReport(parseSnpReport(read(s.file)), { ...opts, product: 'Milan' }).product).toBe(
      'Milan',
    );
    expectCode(
      () => verifySnpReport(parseSnpReport(read(s.file)), { ...opts, product: 'Genoa' }),
      'CERT_ROOT_UNTRUSTED',
    );
  });
});
