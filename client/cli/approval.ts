/**
 * Dual control from the command line (docs/key-policy.md §10):
 *
 *   ekms key quorum set KEY --threshold M --approver NAME… [--approval FILE…]    protect a key (or change its quorum)
 *   ekms key quorum remove KEY --approval FILE…                                  remove the protection
 *   ekms approval request OP --key KEY [op params…] --out REQ.json               what approvers will sign
 *   ekms approval sign REQ.json --key PRINCIPAL_KEY_FILE --name NAME [--expires-in 1h] --out APPROVAL.json
 *   ekms approval submit REQ.json --approval FILE… [--profile FILE]              send the request with approvals
 *
 * `approval sign` is offline: it recomputes the digest from the request file (a file whose digest differs is
 * refused), shows the operation, key and parameters for the approver to check, and signs with the approver's
 * Ed25519 key file (PKCS#8 PEM, as `ekms start` writes the operator's admin.key). Approvers are listed sorted, so
 * `quorum set` and `approval request putKeyQuorum` build the same parameters from the same names.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { APPROVAL_LIMITS, PROTECTED_OPERATIONS } from '../../shared/approval.js';
import type { Params } from '../../shared/messages.js';
import {
  type Approval,
  type ApprovalRequestDocument,
  approvalDocument,
  approvalFromDocument,
  parseApprovalRequestDocument,
  signApproval,
} from '../approval.js';
import { type KeyMetadata, parseKeyMetadata } from '../kms-types.js';
import type { EkmsClient } from '../sdk.js';
import {
  type ClientOptions,
  clientOptions,
  collect,
  durationOption,
  intOption,
  ioError,
  readBounded,
  usage,
  withClient,
} from './common.js';
import { printResult } from './output.js';

/** Largest request, approval, policy or key file read. */
const MAX_FILE_BYTES = 64 * 1024;

type Opts<T> = ClientOptions & T;

async function readText(path: string): Promise<string> {
  const bytes = await readBounded(path, MAX_FILE_BYTES, () => usage(`${path} is larger than 64 KiB`));
  return new TextDecoder().decode(bytes);
}

async function readJson(path: string): Promise<unknown> {
  const text = await readText(path);
  try {
    return JSON.parse(text);
  } catch {
    throw usage(`${path} is not JSON`);
  }
}

function writeText(path: string, text: string): void {
  try {
    writeFileSync(path, text, { mode: 0o644 });
  } catch (err) {
    throw ioError(err, `cannot write ${path}`);
  }
}

/**
 * The approvals in `--approval` files (at most APPROVAL_LIMITS.maxApprovals), for an operation on a protected key.
 * @throws ConfigError USAGE_ERROR, IO_ERROR; KmsError APPROVAL_INVALID (a file that is not an approval document)
 */
export async function readApprovals(files: readonly string[]): Promise<Approval[]> {
  if (files.length > APPROVAL_LIMITS.maxApprovals) {
    throw usage(`at most ${APPROVAL_LIMITS.maxApprovals} --approval files`);
  }
  return Promise.all(files.map(async (f) => approvalFromDocument(await readJson(f))));
}

/** A quorum from --threshold and --approver (sorted; the service checks the rest). */
function quorumOf(o: { threshold?: string; approver: string[] }): { threshold: number; approvers: string[] } {
  if (o.threshold === undefined || o.approver.length === 0) {
    throw usage('give --threshold M and at least one --approver NAME');
  }
  const approvers = [...o.approver].sort();
  return { threshold: intOption(o.threshold, '--threshold', 1, APPROVAL_LIMITS.maxApprovers), approvers };
}

/**
 * `--expires-in` as milliseconds: N followed by s, m, h or d; at most 24 h.
 * @throws ConfigError USAGE_ERROR
 */
export function parseExpiresIn(value: string): number {
  return durationOption(value, '--expires-in', 1000, APPROVAL_LIMITS.maxLifetimeMs, '1s..24h');
}

/**
 * JSON with every character outside printable ASCII escaped (\uXXXX): what an approver reads is what is signed —
 * no bidirectional overrides, zero-width or look-alike characters can make a policy text look like another.
 */
export function asciiJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(
    /[^\x20-\x7e\n]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

function requestLines(r: ApprovalRequestDocument): string[] {
  return [
    `operation:  ${r.op}`,
    `key id:     ${r.keyId}`,
    `sequence:   ${r.sequence}`,
    `parameters: ${asciiJson(r.params).replace(/\n/g, '\n            ')}`,
    `digest:     ${r.digest}`,
  ];
}

function printKeyResult(json: boolean, m: KeyMetadata, approvedBy: unknown, headline: string): void {
  const by = Array.isArray(approvedBy) ? (approvedBy as string[]) : null;
  printResult(json, { ...m, approvedBy: by }, () =>
    [
      headline,
      `key id:     ${m.keyId}`,
      `state:      ${m.state}`,
      `quorum:     ${m.quorum === null ? 'none (not protected)' : `${m.quorum.threshold} of ${m.quorum.approvers.join(', ')} (sequence ${m.quorum.sequence})`}`,
      ...(by === null ? [] : [`approved by: ${by.join(', ')}`]),
    ].join('\n'),
  );
}

interface RequestOptions {
  key: string;
  out: string;
  days?: string;
  policyFile?: string;
  defaultPolicy?: boolean;
  releasePolicyFile?: string;
  removeReleasePolicy?: boolean;
  keyVersion?: string;
  recipientDigest?: string;
  threshold?: string;
  approver: string[];
  remove?: boolean;
  grantee?: string;
  grantOperation: string[];
  grantContext: string[];
  grantSeconds?: string;
}

/** The parameters of `op` from the `approval request` options (keyId added by the caller). */
async function opParams(op: string, o: RequestOptions): Promise<Params> {
  switch (op) {
    case 'disableKey':
      return {};
    case 'scheduleKeyDeletion':
      return o.days === undefined ? {} : { pendingWindowInDays: intOption(o.days, '--days', 7, 30) };
    case 'putKeyPolicy':
      if ((o.policyFile === undefined) === (o.defaultPolicy !== true)) {
        throw usage('putKeyPolicy: give exactly one of --policy-file and --default-policy');
      }
      return { policy: o.policyFile === undefined ? null : await readText(o.policyFile) };
    case 'putKeyReleasePolicy':
      if ((o.releasePolicyFile === undefined) === (o.removeReleasePolicy !== true)) {
        throw usage(
          'putKeyReleasePolicy: give exactly one of --release-policy-file and --remove-release-policy',
        );
      }
      return {
        releasePolicy: o.releasePolicyFile === undefined ? null : await readText(o.releasePolicyFile),
      };
    case 'releaseKey': {
      // The approvals cover who receives the key: the workload's recipient key, by digest.
      if (o.recipientDigest === undefined || !/^[0-9a-f]{64}$/.test(o.recipientDigest)) {
        throw usage(
          'releaseKey: --recipient-digest HEX is required (64 lowercase hex digits: SHA-256 of the workload recipient key)',
        );
      }
      return {
        recipientDigest: o.recipientDigest,
        ...(o.keyVersion === undefined
          ? {}
          : { keyVersion: intOption(o.keyVersion, '--key-version', 1, 1000) }),
      };
    }
    case 'createGrant': {
      if (o.grantee === undefined || o.grantOperation.length === 0) {
        throw usage('createGrant: --grantee NAME and at least one --grant-operation OP are required');
      }
      const subset: Record<string, string> = {};
      for (const kv of o.grantContext) {
        const at = kv.indexOf('=');
        if (at <= 0) throw usage(`--grant-context takes KEY=VALUE, not ${JSON.stringify(kv)}`);
        subset[kv.slice(0, at)] = kv.slice(at + 1);
      }
      return {
        grantee: o.grantee,
        operations: [...o.grantOperation],
        ...(o.grantContext.length === 0 ? {} : { contextSubset: subset }),
        ...(o.grantSeconds === undefined
          ? {}
          : { expiresInSeconds: intOption(o.grantSeconds, '--grant-seconds', 60, 30 * 86_400) }),
      };
    }
    case 'putKeyQuorum':
      if (o.remove === true) {
        if (o.threshold !== undefined || o.approver.length > 0)
          throw usage('--remove takes no --threshold/--approver');
        return { quorum: null };
      }
      return { quorum: quorumOf(o) };
    default:
      throw usage(`${op} takes no approvals; protected operations: ${PROTECTED_OPERATIONS.join(', ')}`);
  }
}

function readPrincipalKey(pem: string, path: string): KeyObject {
  try {
    const key = createPrivateKey(pem);
    if (key.asymmetricKeyType !== 'ed25519') throw new Error('not Ed25519');
    return key;
  } catch {
    throw usage(`${path} is not an Ed25519 private key (PKCS#8 PEM)`);
  }
}

/** `ekms key quorum set|remove`. */
export function registerKeyQuorum(key: Command): void {
  const quorum = key
    .command('quorum')
    .description('dual control: M-of-N admin approvals for protected operations (docs/key-policy.md §10)');
  clientOptions(
    quorum
      .command('set <key-id>')
      .description(
        'protect a key, or change its quorum (a protected key needs its current quorum: --approval)',
      )
      .option('--threshold <m>', 'approvals needed (M)')
      .option('--approver <name>', 'a registered admin who may approve (repeatable: N)', collect, [])
      .option('--approval <file>', 'an approval of this exact change (repeatable)', collect, []),
  ).action(async (keyId: string, o: Opts<{ threshold?: string; approver: string[]; approval: string[] }>) => {
    const q = quorumOf(o);
    const approvals = await readApprovals(o.approval);
    const r = await withClient(o, (c) => c.request('putKeyQuorum', quorumParams(keyId, q, approvals)));
    printKeyResult(o.json === true, parseKeyMetadata(r), r['approvedBy'], 'quorum set');
  });
  clientOptions(
    quorum
      .command('remove <key-id>')
      .description("remove a key's protection (needs its quorum: --approval)")
      .option('--approval <file>', 'an approval of this exact change (repeatable)', collect, []),
  ).action(async (keyId: string, o: Opts<{ approval: string[] }>) => {
    const approvals = await readApprovals(o.approval);
    const r = await withClient(o, (c) => c.request('putKeyQuorum', quorumParams(keyId, null, approvals)));
    printKeyResult(o.json === true, parseKeyMetadata(r), r['approvedBy'], 'quorum removed');
  });
}

function quorumParams(
  keyId: string,
  quorum: { threshold: number; approvers: string[] } | null,
  approvals: readonly Approval[],
): Params {
  return {
    keyId,
    quorum,
    ...(approvals.length === 0 ? {} : { approvals: approvals.map((a) => ({ ...a })) }),
  };
}

/** `ekms approval request|sign|submit`. */
export function registerApproval(program: Command): void {
  const approval = program
    .command('approval')
    .description('approve protected operations on protected keys: request, sign (offline), submit');

  clientOptions(
    approval
      .command('request <op>')
      .description('write the request approvers sign: op, key id, the key approval sequence, params, digest')
      .requiredOption('--key <key-id>', 'key id or alias/NAME (the request names the key id)')
      .requiredOption('--out <file>', 'where to write the request (JSON)')
      .option('--days <n>', 'scheduleKeyDeletion: waiting period (7..30)')
      .option('--policy-file <file>', 'putKeyPolicy: the policy document')
      .option('--default-policy', 'putKeyPolicy: restore the default policy')
      .option('--release-policy-file <file>', 'putKeyReleasePolicy: the attestation policy')
      .option('--remove-release-policy', 'putKeyReleasePolicy: remove it')
      .option('--key-version <n>', 'releaseKey: the version to release')
      .option('--recipient-digest <hex>', 'releaseKey: SHA-256 of the receiving workload recipient key')
      .option('--threshold <m>', 'putKeyQuorum: approvals needed')
      .option('--approver <name>', 'putKeyQuorum: an approver (repeatable)', collect, [])
      .option('--remove', 'putKeyQuorum: remove the protection')
      .option('--grantee <name>', 'createGrant: the principal the grant is for')
      .option(
        '--grant-operation <op>',
        'createGrant: a granted operation, e.g. Decrypt (repeatable)',
        collect,
        [],
      )
      .option(
        '--grant-context <key=value>',
        'createGrant: required encryption context entry (repeatable)',
        collect,
        [],
      )
      .option('--grant-seconds <n>', 'createGrant: lifetime in seconds (60..2592000, default 1 day)'),
  ).action(async (op: string, o: Opts<RequestOptions>) => {
    const params = await opParams(op, o);
    const doc = await withClient(o, (c: EkmsClient) => c.prepareApproval(op, { ...params, keyId: o.key }));
    writeText(o.out, `${JSON.stringify(doc, null, 2)}\n`);
    printResult(o.json === true, { file: o.out, ...doc }, () =>
      [`wrote ${o.out}`, ...requestLines(doc)].join('\n'),
    );
  });

  approval
    .command('sign <request-file>')
    .description('approve a request (offline): shows what it approves, signs it with a principal key')
    .requiredOption('--key <file>', "the approver's Ed25519 private key (PKCS#8 PEM)")
    .requiredOption('--name <name>', "the approver's principal name")
    .option('--expires-in <duration>', 'validity (1s..24h, e.g. 30m)', '1h')
    .requiredOption('--out <file>', 'where to write the approval (JSON)')
    .option('--json', 'JSON output')
    .action(
      async (
        file: string,
        o: { key: string; name: string; expiresIn: string; out: string; json?: boolean },
      ) => {
        const lifetime = parseExpiresIn(o.expiresIn);
        const request = parseApprovalRequestDocument(await readJson(file));
        const privateKey = readPrincipalKey(await readText(o.key), o.key);
        const expiresAt = Date.now() + lifetime;
        const a = signApproval(Buffer.from(request.digest, 'hex'), { privateKey }, o.name, expiresAt);
        const doc = approvalDocument(a, request);
        writeText(o.out, `${JSON.stringify(doc, null, 2)}\n`);
        printResult(
          o.json === true,
          {
            file: o.out,
            approver: doc.approver,
            op: request.op,
            keyId: request.keyId,
            sequence: request.sequence,
            params: request.params,
            digest: request.digest,
            expiresAt: doc.expiresAt,
          },
          () =>
            [`${o.name} approves, until ${doc.expiresAt}:`, ...requestLines(request), `wrote ${o.out}`].join(
              '\n',
            ),
        );
      },
    );

  clientOptions(
    approval
      .command('submit <request-file>')
      .description('send the request with its approvals')
      .option('--approval <file>', 'an approval (repeatable)', collect, []),
  ).action(async (file: string, o: Opts<{ approval: string[] }>) => {
    const request = parseApprovalRequestDocument(await readJson(file));
    const approvals = await readApprovals(o.approval);
    const r = await withClient(o, (c) => c.submitApproved(request, approvals));
    if (r['keyMetadata'] !== undefined) {
      printKeyResult(o.json === true, parseKeyMetadata(r), r['approvedBy'], `${request.op}: done`);
      return;
    }
    // releaseKey: the wrapped material is for the attested workload, not for this command line.
    const approvedBy = Array.isArray(r['approvedBy']) ? (r['approvedBy'] as string[]) : null;
    printResult(
      o.json === true,
      { op: request.op, keyId: request.keyId, approvedBy },
      () => `${request.op}: done${approvedBy === null ? '' : ` (approved by ${approvedBy.join(', ')})`}`,
    );
  });
}
