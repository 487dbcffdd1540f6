/**
 * `ekms key …` (design §5; docs/key-service.md §4): the key service operations from the command line. Every
 * subcommand takes --profile, --timeout and --json; with --json it prints one `{"ok":true,…}` document (key
 * metadata flattened into it) and errors as `{"ok":false,"code","message"}`. Anywhere a key id is taken,
 * `alias/NAME` works too. Binary values are standard base64.
 */
import { type Command, Option } from 'commander';
import { CryptoError } from '../../shared/crypto-errors.js';
import { ProtocolError } from '../../shared/errors.js';
import { LIMITS } from '../../shared/limits.js';
import type { EkmsClient, KeyListPage, KeyMetadata } from '../sdk.js';
import { readApprovals, registerKeyQuorum } from './approval.js';
import {
  b64,
  type ClientOptions,
  clientOptions,
  collect,
  durationOption,
  intOption,
  parseBase64,
  parseContext,
  readBounded,
  usage,
  withClient,
} from './common.js';
import { printResult } from './output.js';

/** Most bytes read for a ciphertext blob argument; the enclave checks the exact limit (~4.4 KiB). */
const MAX_CIPHERTEXT_INPUT_BYTES = 16 * 1024;
/** `--all` stops after this many pages (a service that never ends a listing must not loop us forever). */
const MAX_PAGES = 10_000;

// ------------------------------------------------------------------------------------------------ human output

function describeLines(m: KeyMetadata): string[] {
  const lines = [
    `key id:       ${m.keyId}`,
    `state:        ${m.state}`,
    `description:  ${m.description === '' ? '(none)' : m.description}`,
    `suite:        ${m.suite}`,
    `created:      ${m.createdAt}`,
    `version:      ${m.currentVersion} (current) of ${m.versions.length}`,
    ...m.versions.map((v) => `  v${v.version}  ${v.createdAt}`),
    `rotation:     ${m.rotation ? `every ${m.rotation.periodDays} days, next ${m.rotation.nextRotationAt}` : 'off'}`,
    `aliases:      ${m.aliases.length > 0 ? m.aliases.join(', ') : '(none)'}`,
    `quorum:       ${m.quorum === null ? 'none' : `${m.quorum.threshold} of ${m.quorum.approvers.join(', ')} (sequence ${m.quorum.sequence})`}`,
  ];
  if (m.deletionDate !== null) {
    lines.push(`deletion:     ${m.deletionDate} (window ${m.pendingWindowDays ?? '?'} days)`);
  }
  if (m.destroyedAt !== null) lines.push(`destroyed:    ${m.destroyedAt}`);
  if (m.deniedUses !== null) {
    lines.push(
      `denied uses:  ${m.deniedUses.count} (last ${m.deniedUses.lastOperation} at ${m.deniedUses.lastAt})`,
    );
  }
  return lines;
}

function printKey(json: boolean, m: KeyMetadata, headline?: string): void {
  printResult(json, { ...m }, () => [...(headline ? [headline] : []), ...describeLines(m)].join('\n'));
}

// ------------------------------------------------------------------------------------------------ inputs

interface CiphertextInput {
  ciphertextB64?: string;
  ciphertextFile?: string;
}

async function ciphertextOf(o: CiphertextInput): Promise<Uint8Array> {
  if ((o.ciphertextB64 === undefined) === (o.ciphertextFile === undefined)) {
    throw usage('give exactly one of --ciphertext-b64 and --ciphertext-file');
  }
  if (o.ciphertextB64 !== undefined) return parseBase64(o.ciphertextB64, '--ciphertext-b64');
  return readBounded(
    o.ciphertextFile!,
    MAX_CIPHERTEXT_INPUT_BYTES,
    () =>
      new CryptoError(
        'CIPHERTEXT_TOO_LARGE',
        `${o.ciphertextFile} is larger than any ciphertext blob (envelope streams: ekms decrypt)`,
      ),
  );
}

function plaintextTooLarge(): CryptoError {
  return new CryptoError(
    'PLAINTEXT_TOO_LARGE',
    `key encrypt takes at most ${LIMITS.maxEncryptPlaintextBytes} bytes; use \`ekms encrypt\` (envelope encryption) for larger data`,
  );
}

/** Follows nextMarker until the listing ends. @throws ProtocolError MESSAGE_INVALID if it never does */
async function allPages<T extends { truncated: boolean; nextMarker: string | null }>(
  first: string | undefined,
  page: (marker: string | undefined) => Promise<T>,
): Promise<T[]> {
  const pages: T[] = [];
  let marker = first;
  for (let i = 0; i < MAX_PAGES; i++) {
    const p = await page(marker);
    pages.push(p);
    if (!p.truncated || p.nextMarker === null) return pages;
    /* Precondition: the marker advances (a listing that repeats a marker would never end). */
    if (p.nextMarker === marker) break;
    marker = p.nextMarker;
  }
  throw new ProtocolError('MESSAGE_INVALID', 'the listing does not end (its marker does not advance)');
}

function pageOptions(o: { limit?: string; marker?: string }): { limit?: number; marker?: string } {
  return {
    ...(o.limit === undefined ? {} : { limit: intOption(o.limit, '--limit', 1, LIMITS.maxListPage) }),
    ...(o.marker === undefined ? {} : { marker: o.marker }),
  };
}

// ------------------------------------------------------------------------------------------------ commands

type Opts<T> = ClientOptions & T;

/** A subcommand `key NAME ID` that calls one metadata-returning operation. */
function simpleKeyCommand(
  key: Command,
  name: string,
  description: string,
  call: (client: EkmsClient, keyId: string) => Promise<KeyMetadata>,
  headline: (m: KeyMetadata) => string,
): void {
  clientOptions(key.command(`${name} <key-id>`).description(description)).action(
    async (keyId: string, o: ClientOptions) => {
      const m = await withClient(o, (c) => call(c, keyId));
      printKey(o.json === true, m, headline(m));
    },
  );
}

export function registerKey(program: Command): void {
  const key = program
    .command('key')
    .description('manage keys and use them (ids or alias/NAME everywhere a key is taken)');

  clientOptions(
    key
      .command('create')
      .description('create a key (a versioned KEK that never leaves the enclave)')
      .option('--description <text>', 'description')
      .option('--alias <alias/name>', 'also create this alias for it')
      .option('--rotation-days <n>', 'rotate automatically every N days')
      .option('--suite <name>', 'suite name (default AES-256-GCM/KDF-CTR-HMAC-SHA-512/COMMIT-v2)'),
  ).action(
    async (o: Opts<{ description?: string; alias?: string; rotationDays?: string; suite?: string }>) => {
      const input = {
        ...(o.description === undefined ? {} : { description: o.description }),
        ...(o.alias === undefined ? {} : { aliasName: o.alias }),
        ...(o.suite === undefined ? {} : { suite: o.suite }),
        ...(o.rotationDays === undefined
          ? {}
          : {
              rotationPeriodDays: intOption(
                o.rotationDays,
                '--rotation-days',
                LIMITS.minRotationPeriodDays,
                LIMITS.maxRotationPeriodDays,
              ),
            }),
      };
      const m = await withClient(o, (c) => c.createKey(input));
      printKey(o.json === true, m, 'created key');
    },
  );

  clientOptions(
    key.command('describe <key-id>').description('show a key: state, versions, rotation, aliases'),
  ).action(async (keyId: string, o: ClientOptions) => {
    const m = await withClient(o, (c) => c.describeKey(keyId));
    printKey(o.json === true, m);
  });

  clientOptions(
    key
      .command('list')
      .description('list keys (by key id), one page or --all')
      .option('--limit <n>', `keys per page (1..${LIMITS.maxListPage})`)
      .option('--marker <m>', 'continue after this marker (nextMarker of the previous page)')
      .option('--all', 'follow nextMarker to the end'),
  ).action(async (o: Opts<{ limit?: string; marker?: string; all?: boolean }>) => {
    const po = pageOptions(o);
    const page: KeyListPage = await withClient(o, async (c) => {
      if (!o.all) return c.listKeys(po);
      const pages = await allPages(po.marker, (marker) =>
        c.listKeys({ ...po, ...(marker === undefined ? {} : { marker }) }),
      );
      return { keys: pages.flatMap((p) => p.keys), truncated: false, nextMarker: null };
    });
    printResult(o.json === true, { ...page }, () =>
      [
        ...(page.keys.length === 0 ? ['(no keys)'] : page.keys.map((k) => `${k.keyId}  ${k.state}`)),
        ...(page.truncated && page.nextMarker !== null
          ? [`(more: --marker ${page.nextMarker}, or --all)`]
          : []),
      ].join('\n'),
    );
  });

  simpleKeyCommand(
    key,
    'rotate',
    'add a key version now (new ciphertexts use it; old ones keep decrypting)',
    (c, id) => c.rotateKey(id),
    (m) => `rotated: current version ${m.currentVersion}`,
  );
  simpleKeyCommand(
    key,
    'enable',
    'enable a disabled key',
    (c, id) => c.enableKey(id),
    () => 'enabled',
  );
  simpleKeyCommand(
    key,
    'disable',
    'disable a key (its uses fail until enabled)',
    (c, id) => c.disableKey(id),
    () => 'disabled',
  );

  clientOptions(
    key
      .command('schedule-deletion <key-id>')
      .description('schedule the destruction of a key; it is unusable meanwhile')
      .option(
        '--days <n>',
        `waiting period in days (${LIMITS.minDeletionWindowDays}..${LIMITS.maxDeletionWindowDays}, default 30)`,
      ),
  ).action(async (keyId: string, o: Opts<{ days?: string }>) => {
    const days =
      o.days === undefined
        ? undefined
        : intOption(o.days, '--days', LIMITS.minDeletionWindowDays, LIMITS.maxDeletionWindowDays);
    const m = await withClient(o, (c) => c.scheduleKeyDeletion(keyId, days));
    printKey(o.json === true, m, `deletion scheduled for ${m.deletionDate ?? '?'}`);
  });

  simpleKeyCommand(
    key,
    'cancel-deletion',
    'cancel a scheduled deletion (the key stays disabled)',
    (c, id) => c.cancelKeyDeletion(id),
    () => 'deletion cancelled; the key is disabled until `ekms key enable`',
  );

  clientOptions(
    key
      .command('rotation <key-id>')
      .description('turn automatic rotation on (--enable [--days N]) or off (--disable)')
      .option('--enable', 'rotate automatically')
      .option('--disable', 'stop rotating automatically')
      .option(
        '--days <n>',
        `rotation period with --enable (${LIMITS.minRotationPeriodDays}..${LIMITS.maxRotationPeriodDays}, default 365)`,
      ),
  ).action(async (keyId: string, o: Opts<{ enable?: boolean; disable?: boolean; days?: string }>) => {
    if (o.enable === o.disable) throw usage('give exactly one of --enable and --disable');
    if (o.disable && o.days !== undefined) throw usage('--days goes with --enable');
    const days =
      o.days === undefined
        ? undefined
        : intOption(o.days, '--days', LIMITS.minRotationPeriodDays, LIMITS.maxRotationPeriodDays);
    const m = await withClient(o, (c) =>
      o.enable ? c.enableKeyRotation(keyId, days) : c.disableKeyRotation(keyId),
    );
    printKey(o.json === true, m, o.enable ? 'automatic rotation on' : 'automatic rotation off');
  });

  registerAlias(key);
  registerKeyQuorum(key);

  clientOptions(
    key
      .command('encrypt')
      .description(
        `encrypt up to ${LIMITS.maxEncryptPlaintextBytes} bytes; prints the ciphertext blob (base64)`,
      )
      .requiredOption('--key <key-id>', 'key id or alias/NAME')
      .option('--plaintext-file <file>', 'the plaintext (- for stdin)')
      .option('--plaintext-b64 <base64>', 'the plaintext, base64')
      .option('--context <k=v>', 'encryption context entry (repeatable)', collect, []),
  ).action(
    async (o: Opts<{ key: string; plaintextFile?: string; plaintextB64?: string; context: string[] }>) => {
      const context = parseContext(o.context);
      if ((o.plaintextFile === undefined) === (o.plaintextB64 === undefined)) {
        throw usage('give exactly one of --plaintext-file and --plaintext-b64');
      }
      const plaintext =
        o.plaintextB64 !== undefined
          ? parseBase64(o.plaintextB64, '--plaintext-b64')
          : await readBounded(o.plaintextFile!, LIMITS.maxEncryptPlaintextBytes, plaintextTooLarge);
      try {
        if (plaintext.length > LIMITS.maxEncryptPlaintextBytes) throw plaintextTooLarge();
        const r = await withClient(o, (c) => c.encrypt(o.key, plaintext, context));
        const ciphertext = b64(r.ciphertextBlob);
        printResult(
          o.json === true,
          { ciphertext, keyId: r.keyId, keyVersion: r.keyVersion },
          () => ciphertext,
        );
      } finally {
        plaintext.fill(0);
      }
    },
  );

  clientOptions(
    key
      .command('decrypt')
      .description('decrypt a ciphertext blob; prints the plaintext (base64)')
      .option('--ciphertext-b64 <base64>', 'the ciphertext blob, base64')
      .option('--ciphertext-file <file>', 'the ciphertext blob, raw bytes (- for stdin)')
      .option('--key <key-id>', 'refuse blobs not made under this key (KEY_ID_MISMATCH)')
      .option('--context <k=v>', 'encryption context entry (repeatable)', collect, []),
  ).action(async (o: Opts<CiphertextInput & { key?: string; context: string[] }>) => {
    const context = parseContext(o.context);
    const blob = await ciphertextOf(o);
    const r = await withClient(o, (c) => c.decrypt(blob, context, o.key));
    try {
      const plaintext = b64(r.plaintext);
      printResult(o.json === true, { plaintext, keyId: r.keyId, keyVersion: r.keyVersion }, () => plaintext);
    } finally {
      r.plaintext.fill(0);
    }
  });

  clientOptions(
    key
      .command('re-encrypt')
      .description('re-encrypt a ciphertext blob under another key or context, inside the enclave')
      .option('--ciphertext-b64 <base64>', 'the ciphertext blob, base64')
      .option('--ciphertext-file <file>', 'the ciphertext blob, raw bytes (- for stdin)')
      .requiredOption('--destination-key <key-id>', 'key to re-encrypt under')
      .option('--source-key <key-id>', 'refuse blobs not made under this key (KEY_ID_MISMATCH)')
      .option('--source-context <k=v>', 'context the blob was encrypted with (repeatable)', collect, [])
      .option('--destination-context <k=v>', 'context for the new blob (repeatable)', collect, []),
  ).action(
    async (
      o: Opts<
        CiphertextInput & {
          destinationKey: string;
          sourceKey?: string;
          sourceContext: string[];
          destinationContext: string[];
        }
      >,
    ) => {
      const sourceEncryptionContext = parseContext(o.sourceContext, '--source-context');
      const destinationEncryptionContext = parseContext(o.destinationContext, '--destination-context');
      const blob = await ciphertextOf(o);
      const r = await withClient(o, (c) =>
        c.reEncrypt({
          ciphertextBlob: blob,
          destinationKeyId: o.destinationKey,
          sourceEncryptionContext,
          destinationEncryptionContext,
          ...(o.sourceKey === undefined ? {} : { sourceKeyId: o.sourceKey }),
        }),
      );
      const ciphertext = b64(r.ciphertextBlob);
      printResult(
        o.json === true,
        {
          ciphertext,
          keyId: r.keyId,
          keyVersion: r.keyVersion,
          sourceKeyId: r.sourceKeyId,
          sourceKeyVersion: r.sourceKeyVersion,
        },
        () => ciphertext,
      );
    },
  );

  clientOptions(
    key
      .command('generate-data-key')
      .description('a fresh data key: in plaintext and sealed under the key (base64)')
      .requiredOption('--key <key-id>', 'key id or alias/NAME')
      .option('--context <k=v>', 'encryption context entry (repeatable)', collect, [])
      .option(
        '--bytes <n>',
        `data key length in bytes (${LIMITS.minDataKeyBytes}..${LIMITS.maxDataKeyBytes})`,
      )
      .addOption(new Option('--spec <spec>', 'key spec (default AES_256)').choices(['AES_256', 'AES_128']))
      .option('--no-plaintext', 'return only the sealed data key'),
  ).action(
    async (
      o: Opts<{ key: string; context: string[]; bytes?: string; spec?: string; plaintext: boolean }>,
    ) => {
      const encryptionContext = parseContext(o.context);
      if (o.bytes !== undefined && o.spec !== undefined) throw usage('give --bytes or --spec, not both');
      const options = {
        encryptionContext,
        ...(o.spec === undefined ? {} : { keySpec: o.spec as 'AES_256' | 'AES_128' }),
        ...(o.bytes === undefined
          ? {}
          : { numberOfBytes: intOption(o.bytes, '--bytes', LIMITS.minDataKeyBytes, LIMITS.maxDataKeyBytes) }),
      };
      if (!o.plaintext) {
        const r = await withClient(o, (c) => c.generateDataKeyWithoutPlaintext(o.key, options));
        const ciphertext = b64(r.ciphertextBlob);
        printResult(o.json === true, { ciphertext, keyId: r.keyId, keyVersion: r.keyVersion }, () =>
          [`key id:     ${r.keyId}`, `version:    ${r.keyVersion}`, `ciphertext: ${ciphertext}`].join('\n'),
        );
        return;
      }
      const r = await withClient(o, (c) => c.generateDataKey(o.key, options));
      try {
        const plaintext = b64(r.plaintext);
        const ciphertext = b64(r.ciphertextBlob);
        printResult(
          o.json === true,
          { plaintext, ciphertext, keyId: r.keyId, keyVersion: r.keyVersion },
          () =>
            [
              `key id:     ${r.keyId}`,
              `version:    ${r.keyVersion}`,
              `plaintext:  ${plaintext}`,
              `ciphertext: ${ciphertext}`,
            ].join('\n'),
        );
      } finally {
        r.plaintext.fill(0);
      }
    },
  );

  const policy = key.command('policy').description('key policies (docs/key-policy.md): get, put, lint');
  clientOptions(policy.command('get <key-id>').description("print the key's effective policy")).action(
    async (keyId: string, o: ClientOptions) => {
      const p = await withClient(o, (c) => c.getKeyPolicy(keyId));
      printResult(
        o.json === true,
        { keyId, default: p.default, policy: JSON.parse(p.policy) as unknown },
        () =>
          `${p.default ? '# the default policy (separation of duties)\n' : ''}${JSON.stringify(JSON.parse(p.policy), null, 2)}`,
      );
    },
  );
  clientOptions(
    policy
      .command('put <key-id>')
      .description('set the key policy from a JSON file (--default restores the default policy)')
      .option('--file <policy.json>', 'the policy document')
      .option('--default', 'remove the key policy: the default separation-of-duties policy applies'),
  ).action(async (keyId: string, o: Opts<{ file?: string; default?: boolean }>) => {
    if ((o.file === undefined) === (o.default !== true))
      throw usage('give exactly one of --file and --default');
    let text: string | null = null;
    if (o.file !== undefined) {
      const bytes = await readBounded(o.file, 16 * 1024, () => usage(`${o.file} is larger than 16 KiB`));
      text = new TextDecoder().decode(bytes);
    }
    const m = await withClient(o, (c) => c.putKeyPolicy(keyId, text));
    printKey(o.json === true, m, text === null ? 'default key policy restored' : 'key policy set');
  });
  clientOptions(
    policy
      .command('lint <key-id>')
      .description(
        'flag risky policies: releases without attestation, wildcard users, admins who can use keys…',
      ),
  ).action(async (keyId: string, o: ClientOptions) => {
    const findings = await withClient(o, (c) => c.lintKeyPolicy(keyId));
    printResult(o.json === true, { keyId, findings }, () =>
      findings.length === 0
        ? `${keyId}: no findings`
        : findings.map((f) => `${f.code}: ${f.message}`).join('\n'),
    );
  });

  registerGrant(key);
}

function registerAlias(key: Command): void {
  const alias = key.command('alias').description('name keys: alias/NAME works wherever a key id does');

  for (const [name, verb] of [
    ['create', 'create an alias for a key'],
    ['update', 'point an existing alias at another key'],
  ] as const) {
    clientOptions(
      alias
        .command(`${name} <alias-name>`)
        .description(verb)
        .requiredOption('--key <key-id>', 'the key the alias names'),
    ).action(async (aliasName: string, o: Opts<{ key: string }>) => {
      // The service returns the alias and its target; describe the target so that the id printed is the key id
      // even when --key was itself an alias.
      const m = await withClient(o, async (c) => {
        if (name === 'create') await c.createAlias(aliasName, o.key);
        else await c.updateAlias(aliasName, o.key);
        return c.describeKey(aliasName);
      });
      printResult(o.json === true, { aliasName, targetKeyId: m.keyId }, () => `${aliasName} → ${m.keyId}`);
    });
  }

  clientOptions(alias.command('delete <alias-name>').description('delete an alias (the key stays)')).action(
    async (aliasName: string, o: ClientOptions) => {
      await withClient(o, (c) => c.deleteAlias(aliasName));
      printResult(o.json === true, { aliasName, deleted: true }, () => `deleted ${aliasName}`);
    },
  );

  clientOptions(
    alias
      .command('list')
      .description('list aliases (of one key with --key)')
      .option('--key <key-id>', 'only the aliases of this key')
      .option('--limit <n>', `aliases per page (1..${LIMITS.maxListPage})`)
      .option('--marker <m>', 'continue after this marker')
      .option('--all', 'follow nextMarker to the end'),
  ).action(async (o: Opts<{ key?: string; limit?: string; marker?: string; all?: boolean }>) => {
    const po = { ...pageOptions(o), ...(o.key === undefined ? {} : { keyId: o.key }) };
    const page = await withClient(o, async (c) => {
      if (!o.all) return c.listAliases(po);
      const pages = await allPages(po.marker, (marker) =>
        c.listAliases({ ...po, ...(marker === undefined ? {} : { marker }) }),
      );
      return { aliases: pages.flatMap((p) => p.aliases), truncated: false, nextMarker: null };
    });
    printResult(o.json === true, { ...page }, () =>
      [
        ...(page.aliases.length === 0
          ? ['(no aliases)']
          : page.aliases.map((a) => `${a.aliasName}  → ${a.targetKeyId}`)),
        ...(page.truncated && page.nextMarker !== null
          ? [`(more: --marker ${page.nextMarker}, or --all)`]
          : []),
      ].join('\n'),
    );
  });
}

// ------------------------------------------------------------------------------------------------ grants

/** Grant lifetimes (docs/key-policy.md §9): 60 s .. 30 days; the service's default is 1 day. */
const MIN_GRANT_MS = 60_000;
const MAX_GRANT_MS = 30 * 86_400_000;

/** A grant as listGrants returns it (docs/key-service.md §4). */
interface GrantEntry {
  grantId: string;
  grantee: string;
  operations: string[];
  contextSubset: Record<string, string> | null;
  createdAt: string;
  expiresAt: string;
  createdBy: string;
}

/** The `grants` of a listGrants result. @throws ProtocolError MESSAGE_INVALID if it is not a list */
function grantsOf(r: Record<string, unknown>): GrantEntry[] {
  const grants = r['grants'];
  if (!Array.isArray(grants)) throw new ProtocolError('MESSAGE_INVALID', 'listGrants: no grants list');
  return grants as GrantEntry[];
}

/** Columns padded to their widest cell (the last one is not padded). */
function table(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) =>
    r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '),
  );
}

function grantLines(grants: readonly GrantEntry[]): string[] {
  if (grants.length === 0) return ['(no grants)'];
  return table([
    ['GRANT ID', 'GRANTEE', 'OPERATIONS', 'CONTEXT SUBSET', 'EXPIRES'],
    ...grants.map((g) => [
      g.grantId,
      g.grantee,
      g.operations.join(','),
      g.contextSubset === null
        ? '-'
        : Object.entries(g.contextSubset)
            .map(([k, v]) => `${k}=${v}`)
            .join(','),
      g.expiresAt,
    ]),
  ]);
}

/** `ekms key grant create|list|revoke` (docs/key-policy.md §9; protected keys §10). */
function registerGrant(key: Command): void {
  const grant = key
    .command('grant')
    .description('delegate use operations on a key to a principal, until they expire or are revoked');

  clientOptions(
    grant
      .command('create <key-id>')
      .description(
        'grant a registered principal use operations on a key (a protected key needs its quorum: --approval)',
      )
      .requiredOption(
        '--grantee <name>',
        'the principal the grant is for (registered, or a workload principal)',
      )
      .option(
        '--operation <op>',
        'a granted operation (repeatable): Encrypt, Decrypt, ReEncryptFrom, ReEncryptTo, GenerateDataKey, GenerateDataKeyWithoutPlaintext, DescribeKey',
        collect,
        [],
      )
      .option(
        '--context <k=v>',
        'only for requests whose encryption context has this entry (repeatable)',
        collect,
        [],
      )
      .option('--expires-in <duration>', 'lifetime (60s..30d, e.g. 30m, 1h, 7d; default 1 day)')
      .option(
        '--approval <file>',
        'an approval of this exact grant (repeatable): `ekms approval request createGrant` with the same values',
        collect,
        [],
      ),
  ).action(
    async (
      keyId: string,
      o: Opts<{
        grantee: string;
        operation: string[];
        context: string[];
        expiresIn?: string;
        approval: string[];
      }>,
    ) => {
      if (o.operation.length === 0) throw usage('give at least one --operation OP');
      const subset = parseContext(o.context);
      // Sent exactly as given (no defaults filled in, operations in order): approvals are of these parameters.
      const input = {
        grantee: o.grantee,
        operations: [...o.operation],
        ...(o.context.length === 0 ? {} : { contextSubset: subset }),
        ...(o.expiresIn === undefined
          ? {}
          : {
              expiresInSeconds:
                durationOption(o.expiresIn, '--expires-in', MIN_GRANT_MS, MAX_GRANT_MS, '60s..30d') / 1000,
            }),
      };
      const approvals = await readApprovals(o.approval);
      const r = await withClient(o, (c) =>
        c.createGrant(keyId, input, approvals.length === 0 ? undefined : { approvals }),
      );
      printResult(o.json === true, { ...r }, () =>
        [
          `grant id:    ${r.grantId}`,
          `expires:     ${r.expiresAt}`,
          ...(r.approvedBy === undefined ? [] : [`approved by: ${r.approvedBy.join(', ')}`]),
        ].join('\n'),
      );
    },
  );

  clientOptions(
    grant.command('list <key-id>').description("list a key's live grants (expired ones are not shown)"),
  ).action(async (keyId: string, o: ClientOptions) => {
    const r = await withClient(o, (c) => c.listGrants(keyId));
    const grants = grantsOf(r);
    printResult(o.json === true, { keyId: r['keyId'], grants }, () => grantLines(grants).join('\n'));
  });

  clientOptions(grant.command('revoke <key-id> <grant-id>').description('revoke a grant at once')).action(
    async (keyId: string, grantId: string, o: ClientOptions) => {
      const r = await withClient(o, (c) => c.revokeGrant(keyId, grantId));
      printResult(o.json === true, { ...r, revoked: true }, () => `revoked grant ${r.grantId} on ${r.keyId}`);
    },
  );
}
