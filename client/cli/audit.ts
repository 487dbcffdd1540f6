/**
 * `ekms audit verify FILE` (design §4, §5; docs/audit.md §7): reads an audit log, verifies its format, hash chain,
 * checkpoint signatures and restarts (shared/audit.ts), and checks each boot record's evidence with
 * attestation/evidence.ts: the evidence verifies at the boot record's time, is trusted, and binds the run's identity
 * key. Trust comes from the client profile (`--profile`, `$EKMS_PROFILE`, or `./.ekms/profile.json` if present):
 * its roots, expected measurement and allowSimulated; without a profile only the embedded vendor roots are trusted
 * and any measurement is accepted (and printed).
 *
 * Prints a summary per key and per principal (allowed / denied / error), the signed head to pass as
 * `--expect-head` next time, and how many records are not yet covered by a checkpoint.
 */
import { existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Command } from 'commander';
import type { Claims } from '../../attestation/claims.js';
import { verifyEvidenceBundle } from '../../attestation/evidence.js';
import { X509Cache } from '../../attestation/x509/index.js';
import {
  AUDIT_LIMITS,
  type AuditBootRecord,
  AuditLogVerifier,
  type AuditOutcomeCounts,
  type AuditSummary,
  auditEvidenceBundle,
} from '../../shared/audit.js';
import { AuditError } from '../../shared/audit-errors.js';
import { EkmsError } from '../../shared/errors.js';
import { DEFAULT_DATA_DIR, loadProfile, PROFILE_FILE } from '../profile.js';
import { checkEnclaveClaims, type EnclaveTrust } from '../session.js';
import { ioError, usage } from './common.js';
import { printResult } from './output.js';

interface VerifyOptions {
  readonly profile?: string;
  readonly expectHead?: string;
  readonly requireSealed?: boolean;
  readonly json?: boolean;
}

/** A boot record's attested facts, as the CLI prints them. */
interface BootFacts {
  readonly seq: number;
  readonly time: string;
  readonly identity: string;
  readonly type: string;
  readonly measurement: string;
  readonly simulated: boolean;
}

/** The profile to take trust from: explicit, $EKMS_PROFILE, or ./.ekms/profile.json when it exists. */
function trustSource(explicit: string | undefined): { trust: EnclaveTrust; source: string } | null {
  const implicit = `${DEFAULT_DATA_DIR}/${PROFILE_FILE}`;
  if (explicit === undefined && process.env['EKMS_PROFILE'] === undefined && !existsSync(implicit))
    return null;
  const { profile, path } = loadProfile(explicit);
  return { trust: profile.trust, source: path };
}

function parseExpectHead(value: string | undefined): { seq: number; hash: string } | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d{1,16}):([0-9a-f]{64})$/.exec(value);
  const seq = m ? Number(m[1]) : Number.NaN;
  if (!m || !Number.isSafeInteger(seq)) {
    throw usage(`--expect-head takes SEQ:HASH (the "head" of an earlier verification), got "${value}"`);
  }
  return { seq, hash: m[2]! };
}

/**
 * Feeds the file to the verifier line by line, reading it in blocks (a line is bounded by AUDIT_LIMITS.maxLineBytes).
 * @throws ConfigError IO_ERROR; AuditError (every verification code)
 */
async function verifyFile(path: string, verifier: AuditLogVerifier): Promise<AuditSummary> {
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    fh = await open(path, 'r');
    const block = Buffer.alloc(1024 * 1024);
    let pending: Buffer = Buffer.alloc(0);
    let lines = 0;
    for (;;) {
      const { bytesRead } = await fh.read(block, 0, block.length, null);
      if (bytesRead === 0) break;
      let data = Buffer.concat([pending, block.subarray(0, bytesRead)]);
      let nl = data.indexOf(0x0a);
      while (nl >= 0) {
        verifier.add(new Uint8Array(data.subarray(0, nl)));
        lines += 1;
        data = data.subarray(nl + 1);
        nl = data.indexOf(0x0a);
      }
      // An over-long line is refused by the verifier without reading the rest of it.
      if (data.length > AUDIT_LIMITS.maxLineBytes) verifier.add(new Uint8Array(data));
      pending = Buffer.from(data);
    }
    /* Precondition: the file ends with a complete line. */
    if (pending.length > 0) {
      throw new AuditError(
        'AUDIT_TRUNCATED',
        `record line ${lines + 1}: the log ends inside a line (no final newline)`,
        { details: { line: lines + 1 } },
      );
    }
    return verifier.finish();
  } catch (err) {
    throw ioError(err, `cannot read ${path}`);
  } finally {
    await fh?.close();
  }
}

function countsText(c: AuditOutcomeCounts): string {
  return `allowed ${c.allowed}, denied ${c.denied}, error ${c.error}`;
}

export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('verify the tamper-evident audit log');

  audit
    .command('verify <file>')
    .description(
      'verify an audit log: format, hash chain, checkpoint signatures, restarts and boot evidence (exit 1 on tampering)',
    )
    .option(
      '--profile <file>',
      "check boot evidence against this profile's trust (default $EKMS_PROFILE or ./.ekms/profile.json if present; else the vendor roots only)",
    )
    .option(
      '--expect-head <seq:hash>',
      'a checkpoint the log must still hold (the "head" of an earlier verification)',
    )
    .option('--require-sealed', 'fail when records are not covered by a signed checkpoint')
    .option('--json', 'JSON output')
    .action(async (file: string, o: VerifyOptions) => {
      const expectHead = parseExpectHead(o.expectHead);
      const source = trustSource(o.profile);
      const cache = new X509Cache();
      const boots: BootFacts[] = [];
      const checkBoot = (boot: AuditBootRecord): void => {
        const at = Date.parse(boot.time);
        let claims: Claims;
        try {
          claims = verifyEvidenceBundle(auditEvidenceBundle(boot.evidence), {
            now: new Date(at),
            extraRoots: source?.trust.roots ?? [],
            cache,
          });
          checkEnclaveClaims(
            claims,
            new Uint8Array(Buffer.from(boot.identity, 'hex')),
            // Without a profile: vendor roots only, and any measurement (printed for the reader to compare).
            source?.trust ?? { measurement: claims.measurement, roots: [], allowSimulated: false },
            at,
          );
        } catch (err) {
          if (source === null && err instanceof EkmsError) {
            throw new EkmsError(err.code, `${err.message} (pass --profile to use a profile's trust)`, {
              cause: err,
            });
          }
          throw err;
        }
        boots.push({
          seq: boot.seq,
          time: boot.time,
          identity: boot.identity,
          type: claims.type,
          measurement: claims.measurement,
          simulated: claims.simulated,
        });
      };
      const verifier = new AuditLogVerifier({
        checkBoot,
        ...(expectHead ? { expectHead } : {}),
        requireSealed: o.requireSealed === true,
      });
      const summary = await verifyFile(file, verifier);
      const { boots: _bootRecords, ...rest } = summary;
      printResult(
        o.json === true,
        { file, trust: source === null ? 'vendor-roots' : source.source, ...rest, boots },
        () =>
          [
            `verified ${file}: ${summary.lines} records, ${summary.events} events, ${summary.checkpoints} checkpoints, ${boots.length} boots`,
            `  trust:   ${source === null ? 'embedded vendor roots (no profile)' : `profile ${source.source}`}`,
            `  head:    ${summary.head === null ? '(no checkpoint)' : `${summary.head.seq}:${summary.head.hash}  (pass as --expect-head next time)`}`,
            ...(summary.unsealed > 0
              ? [`  warning: ${summary.unsealed} record(s) after the last checkpoint are not signed yet`]
              : []),
            ...(summary.abandoned > 0
              ? [
                  `  warning: ${summary.abandoned} record(s) left by runs that ended without a checkpoint are not authenticated`,
                ]
              : []),
            ...boots.map(
              (b) =>
                `  boot seq ${b.seq} at ${b.time}: ${b.type}${b.simulated ? ' (simulated)' : ''} measurement ${b.measurement}`,
            ),
            '  keys:',
            ...Object.entries(summary.keys).map(([k, c]) => `    ${k}: ${countsText(c)}`),
            '  principals:',
            ...Object.entries(summary.principals).map(([p, c]) => `    ${p}: ${countsText(c)}`),
            `    (unauthenticated): ${countsText(summary.anonymous)}`,
          ].join('\n'),
      );
    });
}
