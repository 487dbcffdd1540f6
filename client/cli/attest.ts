/**
 * `ekms attest verify` and `ekms attest simulate` (design §5). The library does no I/O; this module reads the
 * files, supplies the clock and the embedded roots, and prints claims or every policy violation.
 */
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import {
  AMD_SNP_TRUST_ANCHORS,
  AttestationError,
  AWS_NITRO_TRUST_ANCHORS,
  type Claims,
  createSimulatedNitroCa,
  createSimulatedSnpCa,
  evaluate,
  parseNitroDocument,
  parsePolicy,
  parseSnpReport,
  type SimulatedSnpCa,
  type SnpTrustAnchor,
  simulatedNitroCaFiles,
  simulatedNitroCaFromFiles,
  simulateNitroDocument,
  simulateSnpReport,
  type TrustAnchor,
  verifyNitroDocument,
  verifySnpReport,
} from '../../attestation/index.js';
import { ConfigError, EkmsError } from '../../shared/errors.js';
import { printResult } from './output.js';

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function readFile(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (cause) {
    throw new ConfigError(
      'IO_ERROR',
      `cannot read ${what} ${path}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
}

/** Every certificate in a PEM file (a file may bundle several, e.g. AMD's ask_ark.pem). */
function readPemCertificates(path: string): string[] {
  const blocks = readFile(path, 'certificate file').toString('utf8').match(PEM_BLOCK);
  if (!blocks) throw new ConfigError('USAGE_ERROR', `${path} holds no PEM certificate`);
  return blocks;
}

function parseHex(value: string, option: string, bytes?: number): Uint8Array {
  const v = value.toLowerCase().replace(/^0x/, '');
  if (!/^([0-9a-f]{2})*$/.test(v)) throw new ConfigError('USAGE_ERROR', `${option} must be hex`);
  if (bytes !== undefined && v.length !== bytes * 2) {
    throw new ConfigError('USAGE_ERROR', `${option} must be ${bytes} bytes (${bytes * 2} hex digits)`);
  }
  return Uint8Array.from(Buffer.from(v, 'hex'));
}

function parseAt(at: string | undefined): Date {
  if (at === undefined) return new Date();
  const d = new Date(at);
  if (Number.isNaN(d.getTime()) || !/^\d{4}-\d{2}-\d{2}/.test(at)) {
    throw new ConfigError('USAGE_ERROR', `--at must be an ISO-8601 instant, got "${at}"`);
  }
  return d;
}

/** Adds a hint to a parse error when the file is text, which real evidence never is. */
function withEncodingHint(err: unknown, bytes: Uint8Array): unknown {
  if (!(err instanceof AttestationError) && !(err instanceof EkmsError)) return err;
  const text = Buffer.from(bytes).toString('latin1').trim();
  let hint = '';
  if (/^[A-Za-z0-9+/=\s]+$/.test(text) && text.length % 4 === 0)
    hint = ' (this looks base64-encoded: decode it first)';
  else if (/^[0-9a-fA-F\s]+$/.test(text)) hint = ' (this looks hex-encoded: decode it first)';
  if (!hint) return err;
  return new EkmsError(err.code, `${err.message}${hint}`, { cause: err });
}

function snpProductOf(pem: string, path: string): SnpTrustAnchor['product'] {
  const cn = /CN=ARK-(Milan|Genoa|Turin)\b/.exec(new X509Certificate(pem).subject.replace(/\n/g, ','));
  if (!cn)
    throw new ConfigError(
      'USAGE_ERROR',
      `--root ${path}: an SEV-SNP root must be an ARK (CN=ARK-Milan|Genoa|Turin)`,
    );
  return cn[1] as SnpTrustAnchor['product'];
}

interface VerifyOptions {
  type: string;
  root: string[];
  cert: string[];
  at?: string;
  policy?: string;
  json?: boolean;
}

/** Verifies one file; returns the claims (throws on any failure). */
export function verifyEvidenceFile(file: string, o: VerifyOptions): Claims {
  const bytes = new Uint8Array(readFile(file, 'evidence'));
  const now = parseAt(o.at);
  // Roots given on the command line are not the embedded vendor roots: claims from them say simulated: true,
  // so that a policy must allow them explicitly (docs/attestation-policy.md).
  if (o.type === 'nitro') {
    const extra: TrustAnchor[] = o.root.flatMap((p) =>
      readPemCertificates(p).map((certificate) => ({ certificate, simulated: true, name: p })),
    );
    let evidence: ReturnType<typeof parseNitroDocument>;
    try {
      evidence = parseNitroDocument(bytes);
    } catch (err) {
      throw withEncodingHint(err, bytes);
    }
    return verifyNitroDocument(evidence, { trustAnchors: [...AWS_NITRO_TRUST_ANCHORS, ...extra], now });
  }
  if (o.type === 'sev-snp') {
    const certs = o.cert.flatMap(readPemCertificates);
    const roots = o.root.flatMap((p) => readPemCertificates(p).map((pem) => ({ pem, path: p })));
    const leaves = certs.filter((pem) => !new X509Certificate(pem).ca);
    if (leaves.length > 1) throw new ConfigError('USAGE_ERROR', 'pass exactly one VCEK/VLEK with --cert');
    const extra: SnpTrustAnchor[] = roots.map(({ pem, path }) => ({
      product: snpProductOf(pem, path),
      ark: pem,
      simulated: true,
    }));
    let evidence: ReturnType<typeof parseSnpReport>;
    try {
      evidence = parseSnpReport(bytes);
    } catch (err) {
      throw withEncodingHint(err, bytes);
    }
    return verifySnpReport(evidence, {
      trustAnchors: [...AMD_SNP_TRUST_ANCHORS, ...extra],
      now,
      vek: leaves[0],
      intermediates: certs.filter((pem) => new X509Certificate(pem).ca),
    });
  }
  throw new ConfigError('USAGE_ERROR', '--type must be nitro or sev-snp');
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function writeSecret(path: string, data: string | Uint8Array): void {
  writeFileSync(path, data, { mode: 0o600 });
  chmodSync(path, 0o600);
}

/** Loads the simulated Nitro CA in `dir`, creating it on first use (`root.pem` is the trust anchor). */
async function nitroCa(dir: string): Promise<ReturnType<typeof simulatedNitroCaFromFiles>> {
  if (existsSync(join(dir, 'root.pem'))) {
    const files = readdirSync(dir).filter((n) => n.endsWith('.pem') || n.endsWith('.txt'));
    return simulatedNitroCaFromFiles(
      Object.fromEntries(files.map((n) => [n, readFile(join(dir, n), 'CA file').toString('utf8')])),
    );
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ca = await createSimulatedNitroCa({ now: new Date() });
  for (const [name, content] of Object.entries(simulatedNitroCaFiles(ca))) {
    if (name.endsWith('.key.pem')) writeSecret(join(dir, name), content);
    else writeFileSync(join(dir, name), content);
  }
  return ca;
}

/** Loads the simulated SNP CA in `dir` (ca.json), creating it on first use with ark.pem, ask.pem, vcek.pem. */
async function snpCa(dir: string): Promise<SimulatedSnpCa> {
  const file = join(dir, 'ca.json');
  if (existsSync(file)) {
    const ca = JSON.parse(readFile(file, 'CA file').toString('utf8')) as SimulatedSnpCa;
    if (ca.format !== 'ekms-simulated-sev-snp-ca')
      throw new ConfigError('CONFIG_INVALID', `${file} is not a simulated SNP CA`);
    return ca;
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ca = await createSimulatedSnpCa({ now: new Date() });
  writeSecret(file, `${JSON.stringify(ca, null, 2)}\n`);
  writeFileSync(join(dir, 'ark.pem'), ca.ark);
  writeFileSync(join(dir, 'ask.pem'), ca.ask);
  writeFileSync(join(dir, 'vcek.pem'), ca.vcek);
  return ca;
}

interface SimulateOptions {
  type: string;
  ca: string;
  out: string;
  pcr: string[];
  measurement?: string;
  reportData?: string;
  userData?: string;
  nonce?: string;
  publicKey?: string;
  debug?: boolean;
  json?: boolean;
}

async function simulate(o: SimulateOptions): Promise<Record<string, unknown>> {
  if (o.type === 'nitro') {
    if (o.reportData !== undefined)
      throw new ConfigError('USAGE_ERROR', '--report-data is for sev-snp; use --user-data');
    const pcrs: Record<number, Uint8Array> = {};
    if (!o.debug) {
      // A production enclave: non-zero PCR0–2 (zero PCR0–2 is how Nitro marks debug mode).
      for (const i of [0, 1, 2]) pcrs[i] = new Uint8Array(48).fill(0x11 * (i + 1));
    }
    if (o.measurement !== undefined) pcrs[0] = parseHex(o.measurement, '--measurement', 48);
    for (const p of o.pcr) {
      const m = /^(\d{1,2})=([0-9a-fA-F]+)$/.exec(p);
      if (!m || Number(m[1]) > 31)
        throw new ConfigError('USAGE_ERROR', `--pcr takes N=HEX with N in 0..31, got "${p}"`);
      pcrs[Number(m[1])] = parseHex(m[2]!, `--pcr ${m[1]}`, 48);
    }
    if (o.debug) for (const i of [0, 1, 2]) pcrs[i] = new Uint8Array(48);
    const ca = await nitroCa(o.ca);
    const doc = await simulateNitroDocument(ca, {
      now: new Date(),
      pcrs,
      ...(o.userData !== undefined ? { userData: parseHex(o.userData, '--user-data') } : {}),
      ...(o.nonce !== undefined ? { nonce: parseHex(o.nonce, '--nonce') } : {}),
      ...(o.publicKey !== undefined
        ? { publicKey: new Uint8Array(readFile(o.publicKey, 'public key')) }
        : {}),
    });
    writeFileSync(o.out, doc);
    return { type: 'nitro', out: o.out, bytes: doc.length, root: join(o.ca, 'root.pem') };
  }
  if (o.type === 'sev-snp') {
    for (const [opt, v] of [
      ['--user-data', o.userData],
      ['--nonce', o.nonce],
      ['--public-key', o.publicKey],
    ] as const) {
      if (v !== undefined)
        throw new ConfigError('USAGE_ERROR', `${opt} is for nitro; bind data with --report-data`);
    }
    if (o.pcr.length > 0) throw new ConfigError('USAGE_ERROR', '--pcr is for nitro; use --measurement');
    const ca = await snpCa(o.ca);
    const report = simulateSnpReport(ca, {
      ...(o.measurement !== undefined ? { measurement: parseHex(o.measurement, '--measurement', 48) } : {}),
      ...(o.reportData !== undefined ? { reportData: parseHex(o.reportData, '--report-data') } : {}),
      debug: o.debug === true,
    });
    writeFileSync(o.out, report);
    return {
      type: 'sev-snp',
      out: o.out,
      bytes: report.length,
      root: join(o.ca, 'ark.pem'),
      certs: [join(o.ca, 'ask.pem'), join(o.ca, 'vcek.pem')],
    };
  }
  throw new ConfigError('USAGE_ERROR', '--type must be nitro or sev-snp');
}

export function registerAttest(program: Command): void {
  const attest = program.command('attest').description('verify or simulate attestation evidence');

  attest
    .command('verify <file>')
    .description('verify a Nitro attestation document or an SEV-SNP report (and a policy)')
    .requiredOption('--type <type>', 'nitro or sev-snp')
    .option('--root <pem>', 'also trust this root (repeatable; claims then say simulated: true)', collect, [])
    .option(
      '--cert <pem>',
      'chain certificates not in the evidence: the SNP VCEK/VLEK, an ASK (repeatable)',
      collect,
      [],
    )
    .option('--at <iso>', 'verify at this instant (archived evidence) instead of now')
    .option('--policy <file>', 'also evaluate this attestation policy (JSON)')
    .option('--json', 'JSON output')
    .action((file: string, o: VerifyOptions) => {
      const claims = verifyEvidenceFile(file, o);
      if (o.policy !== undefined) {
        const policy = parsePolicy(JSON.parse(readFile(o.policy, 'policy').toString('utf8')) as unknown);
        const decision = evaluate(claims, policy, { now: parseAt(o.at) });
        if (!decision.allowed) {
          throw new AttestationError(
            'POLICY_VIOLATION',
            `policy violated: ${decision.violations.map((v) => `${v.code} (${v.field}): ${v.message}`).join('; ')}`,
            { details: { violations: decision.violations } },
          );
        }
      }
      printResult(o.json === true, { ...claims, ...(o.policy ? { policy: 'satisfied' } : {}) }, () =>
        [
          `verified ${claims.type} evidence${o.policy ? ' (policy satisfied)' : ''}`,
          ...Object.entries(claims).map(
            ([k, v]) => `  ${k}: ${typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)}`,
          ),
        ].join('\n'),
      );
    });

  attest
    .command('simulate')
    .description('produce evidence from the simulated attestor (creates the CA in --ca DIR on first use)')
    .requiredOption('--type <type>', 'nitro or sev-snp')
    .requiredOption('--ca <dir>', 'simulated CA directory')
    .requiredOption('--out <file>', 'where to write the evidence')
    .option('--pcr <n=hex>', 'Nitro PCR value (repeatable)', collect, [])
    .option('--measurement <hex>', 'launch measurement (Nitro PCR0 / SNP MEASUREMENT), 48 bytes')
    .option('--report-data <hex>', 'SNP REPORT_DATA (up to 64 bytes)')
    .option('--user-data <hex>', 'Nitro user_data (up to 1024 bytes)')
    .option('--nonce <hex>', 'Nitro nonce (up to 1024 bytes)')
    .option('--public-key <file>', 'Nitro public_key: the file bytes (up to 1024)')
    .option('--debug', 'a debug enclave/guest')
    .option('--json', 'JSON output')
    .action(async (o: SimulateOptions) => {
      const r = await simulate(o);
      printResult(
        o.json === true,
        r,
        () => `wrote ${String(r['bytes'])} bytes of ${String(r['type'])} evidence to ${o.out}`,
      );
    });
}
