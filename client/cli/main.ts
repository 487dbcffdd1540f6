/**
 * The `ekms` command line (design §5). Argument parsing by commander; every command supports `--json`.
 */
import { Command, CommanderError, Option } from 'commander';
import { runStart } from '../../host/start.js';
import { ConfigError, EkmsError, TransportError } from '../../shared/errors.js';
import { VERSION } from '../../shared/version.js';
import { loadProfile, profileConnectOptions } from '../profile.js';
import { connect } from '../sdk.js';
import { registerApproval } from './approval.js';
import { registerAttest } from './attest.js';
import { registerAudit } from './audit.js';
import { registerBench } from './bench.js';
import { registerCustody } from './custody.js';
import { registerEncrypt } from './encrypt.js';
import { registerKey } from './key.js';
import { EXIT_OK, EXIT_USAGE, printError, printResult } from './output.js';

function jsonWanted(argv: readonly string[]): boolean {
  return argv.includes('--json');
}

export function buildProgram(): Command {
  const program = new Command('ekms')
    .description('enclave-kms: keys that live only inside a confidential-computing enclave')
    .version(VERSION)
    .showHelpAfterError()
    .exitOverride();

  program
    .command('start')
    .description('start the host and its enclave; write the client profile into the data dir')
    .option('--data <dir>', 'data directory (profile, sealed state, audit log)', '.ekms')
    .option('--listen <url>', 'client endpoint (ws://HOST:PORT or unix:PATH)', 'ws://127.0.0.1:7400')
    .addOption(
      new Option('--attestor <kind>', 'attestor')
        .choices(['sim-nitro', 'sim-sev-snp', 'nitro', 'sev-snp'])
        .default('sim-nitro'),
    )
    .option('--config <file>', 'configuration file (JSON)')
    .option('--log-level <level>', 'log level', process.env['EKMS_LOG_LEVEL'] ?? 'info')
    .option('--capture <file>', 'record every relayed frame (what the untrusted host sees) into FILE')
    .addOption(
      new Option('--root-key <source>', 'where the root key comes from (docs/custody.md)')
        .choices(['insecure-simulation', 'custody'])
        .default('insecure-simulation'),
    )
    .option('--custodians <file>', 'custody mode: custodians file (public keys + threshold)')
    .option('--json', 'JSON output')
    .action(
      async (o: {
        data: string;
        listen: string;
        attestor: string;
        config?: string;
        logLevel: string;
        capture?: string;
        rootKey: string;
        custodians?: string;
      }) => {
        if (o.config !== undefined) {
          throw new ConfigError(
            'CONFIG_INVALID',
            '--config is not supported yet; use the command-line options',
          );
        }
        await runStart({
          dataDir: o.data,
          listen: o.listen,
          attestor: o.attestor,
          logLevel: o.logLevel,
          ...(o.capture === undefined ? {} : { capture: o.capture }),
          rootKey: o.rootKey,
          ...(o.custodians === undefined ? {} : { custodians: o.custodians }),
        });
        // Keeps running until SIGINT/SIGTERM (handled by runStart).
        await new Promise<never>(() => {});
      },
    );

  program
    .command('status')
    .description('health, enclave measurement, attestor, version')
    .option('--profile <file>', 'client profile (default $EKMS_PROFILE or ./.ekms/profile.json)')
    .option('--timeout <ms>', 'request timeout in milliseconds', '5000')
    .option('--json', 'JSON output')
    .action(async (o: { profile?: string; timeout: string; json?: boolean }) => {
      const { profile, dir } = loadProfile(o.profile);
      const timeoutMs = Number(o.timeout);
      if (!Number.isInteger(timeoutMs) || timeoutMs <= 0)
        throw new ConfigError('USAGE_ERROR', '--timeout must be a positive integer');
      const client = await connect(profile.endpoint, {
        ...profileConnectOptions(profile, dir),
        timeoutMs,
        connectTimeoutMs: timeoutMs,
      });
      try {
        const health = await client.health();
        const d = await client.describe();
        if (d.measurement !== profile.trust.measurement) {
          throw new TransportError(
            'ENCLAVE_MEASUREMENT_MISMATCH',
            `enclave measurement ${d.measurement} is not the profile's ${profile.trust.measurement}`,
          );
        }
        printResult(
          o.json === true,
          {
            status: health.status,
            endpoint: profile.endpoint,
            version: d.version,
            attestor: d.attestor,
            simulated: d.simulated,
            measurement: d.measurement,
            uptimeMs: health.uptimeMs,
          },
          () =>
            [
              `status:      ${health.status}`,
              `endpoint:    ${profile.endpoint}`,
              `version:     ${d.version}`,
              `attestor:    ${d.attestor}${d.simulated ? ' (simulated)' : ''}`,
              `measurement: ${d.measurement} (attested, matches profile)`,
              `uptime:      ${Math.round(health.uptimeMs / 1000)} s`,
            ].join('\n'),
        );
      } finally {
        client.close();
      }
    });
  registerAttest(program);
  registerAudit(program);
  registerBench(program);
  registerCustody(program);
  registerKey(program);
  registerEncrypt(program);
  registerApproval(program);
  return program;
}

/** Runs the CLI; resolves with the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const json = jsonWanted(argv);
  const program = buildProgram();
  if (json) {
    // Keep stdout for the one JSON document; commander's own messages go to stderr.
    program.configureOutput({
      writeOut: (s) => process.stderr.write(s),
      writeErr: (s) => process.stderr.write(s),
    });
  }
  try {
    await program.parseAsync(argv as string[], { from: 'user' });
    // A command that ran a child (ekms bench) reports the child's exit code through process.exitCode.
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT_OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0)
        return EXIT_OK;
      const usage = new EkmsError('USAGE_ERROR', err.message.replace(/^error: /, ''));
      if (json) printError(true, usage);
      return EXIT_USAGE;
    }
    return printError(json, err);
  }
}
