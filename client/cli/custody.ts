/**
 * `ekms custody …` (docs/custody.md): the custodians' commands.
 *
 *   ekms custody keygen --out DIR --name NAME [--json]            a custodian key (offline machine)
 *   ekms custody set --custodian PUB.json… --threshold M --out FILE [--json]   the custodians file for `ekms start`
 *   ekms custody status [--profile FILE] [--json]                 locked? shares held?
 *   ekms custody unlock --key DIR [--profile FILE] [--json]       verify, decrypt and submit this custodian's share
 *
 * `status` and `unlock` connect with the profile's trust only (the attested session checks the enclave's evidence
 * and measurement), never as the profile's admin: a custodian needs no principal, and a locked enclave has none.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import {
  type CustodySet,
  checkCustodySet,
  custodianFingerprint,
  custodySetToJson,
} from '../../shared/custody.js';
import { ConfigError } from '../../shared/errors.js';
import { custodyStatus, custodyUnlock, generateCustodianKey, loadCustodianKey } from '../custody.js';
import { loadProfile } from '../profile.js';
import { connect, type EkmsClient } from '../sdk.js';
import { type ClientOptions, clientOptions, collect, intOption } from './common.js';
import { printResult } from './output.js';

/** Connects with the profile's trust only (no principal). */
async function withCustodyClient<T>(
  o: ClientOptions,
  fn: (client: EkmsClient, trust: ReturnType<typeof loadProfile>['profile']['trust']) => Promise<T>,
): Promise<T> {
  const timeoutMs = intOption(o.timeout, '--timeout', 1, 3_600_000);
  const { profile } = loadProfile(o.profile);
  const client = await connect(profile.endpoint, {
    trust: profile.trust,
    timeoutMs,
    connectTimeoutMs: timeoutMs,
  });
  try {
    return await fn(client, profile.trust);
  } finally {
    client.close();
  }
}

function readPublicFile(path: string): { name: string; publicKey: Uint8Array } {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(readFileSync(resolve(path), 'utf8')) as Record<string, unknown>;
  } catch (cause) {
    throw new ConfigError('IO_ERROR', `cannot read the custodian public key ${path}`, { cause });
  }
  const pk = doc['publicKey'];
  if (typeof doc['name'] !== 'string' || typeof pk !== 'string' || !/^[0-9a-f]+$/.test(pk)) {
    throw new ConfigError('CONFIG_INVALID', `${path} is not a custodian public key file`);
  }
  return { name: doc['name'], publicKey: new Uint8Array(Buffer.from(pk, 'hex')) };
}

export function registerCustody(program: Command): void {
  const custody = program
    .command('custody')
    .description('root-key custody: custodian keys and unlocking (docs/custody.md)');

  custody
    .command('keygen')
    .description('create a custodian key (X-Wing) in DIR; prints its fingerprint')
    .requiredOption('--out <dir>', 'directory for custodian.key (0600) and custodian.pub.json')
    .requiredOption('--name <name>', 'custodian name')
    .option('--json', 'JSON output')
    .action((o: { out: string; name: string; json?: boolean }) => {
      const pub = generateCustodianKey(o.out, o.name);
      printResult(
        o.json === true,
        {
          name: pub.name,
          fingerprint: pub.fingerprint,
          publicKeyFile: resolve(pub.dir, 'custodian.pub.json'),
        },
        () =>
          [
            `custodian:   ${pub.name}`,
            `fingerprint: ${pub.fingerprint}`,
            `public key:  ${resolve(pub.dir, 'custodian.pub.json')} (give this file to the operator; keep custodian.key offline)`,
          ].join('\n'),
      );
    });

  custody
    .command('set')
    .description('assemble the custodians file for `ekms start --root-key custody --custodians FILE`')
    .requiredOption('--custodian <file>', 'a custodian.pub.json (repeat for each custodian)', collect, [])
    .requiredOption('--threshold <m>', 'how many custodians must unlock')
    .requiredOption('--out <file>', 'custodians file to write')
    .option('--json', 'JSON output')
    .action((o: { custodian: string[]; threshold: string; out: string; json?: boolean }) => {
      const set: CustodySet = checkCustodySet({
        threshold: intOption(o.threshold, '--threshold', 1, 16),
        custodians: o.custodian.map(readPublicFile),
      });
      const doc = custodySetToJson(set);
      try {
        writeFileSync(resolve(o.out), `${JSON.stringify(doc, null, 2)}\n`, { mode: 0o644, flag: 'wx' });
      } catch (cause) {
        throw new ConfigError('IO_ERROR', `cannot write ${o.out} (it must not exist yet)`, { cause });
      }
      printResult(
        o.json === true,
        { file: resolve(o.out), threshold: set.threshold, custodians: doc['custodians'] },
        () =>
          // The fingerprints computed here from the keys in the files (not copied from them): the operator compares
          // each with the one its custodian read out over a second channel before using the file.
          [
            `${resolve(o.out)}: ${set.threshold} of ${set.custodians.length} custodians`,
            ...set.custodians.map((c) => `  ${c.name}  fingerprint ${custodianFingerprint(c.publicKey)}`),
            'compare every fingerprint with the one its custodian gave you over a second channel',
          ].join('\n'),
      );
    });

  clientOptions(
    custody.command('status').description('is the enclave locked; which custodian shares it holds'),
  ).action(async (o: ClientOptions) => {
    const s = await withCustodyClient(o, (client) => custodyStatus(client));
    printResult(o.json === true, { ...s }, () =>
      [
        `locked:      ${s.locked}`,
        `threshold:   ${s.threshold} of ${s.custodians.length} (${s.custodians.join(', ')})`,
        `held shares: ${s.held.length === 0 ? 'none' : s.held.join(', ')}`,
        `key check:   ${s.keyCheck} (generation ${s.generation})`,
      ].join('\n'),
    );
  });

  clientOptions(
    custody
      .command('unlock')
      .description("verify the enclave and the custody bundle, then submit this custodian's share")
      .requiredOption('--key <dir>', 'custodian key directory (custody keygen --out)'),
  ).action(async (o: ClientOptions & { key: string }) => {
    const key = loadCustodianKey(o.key);
    try {
      const r = await withCustodyClient(o, (client, trust) => custodyUnlock(client, key, trust));
      printResult(o.json === true, { ...r }, () =>
        !r.submitted
          ? 'the enclave is not locked; nothing was sent'
          : r.unlocked
            ? `share ${r.index} of ${r.custodian} accepted: the enclave is unlocked`
            : `share ${r.index} of ${r.custodian} accepted: ${r.held} of ${r.threshold} shares held`,
      );
    } finally {
      key.secretKey.fill(0);
    }
  });
}
