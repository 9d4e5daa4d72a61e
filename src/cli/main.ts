// The `edgegw` command (DESIGN.md §5): argument parsing and output only; the work is done by the
// stages and the daemon.

import { Command, CommanderError, Option } from 'commander';
import { EdgegwError, Exit } from '../errors.js';
import { VERSION } from '../version.js';
import type { ConsumeOptions } from './consume.js';
import type { ProvisionArgs } from './identity.js';

// Each command's module is imported when that command runs: `edgegw run` (the daemon, for weeks)
// would otherwise keep the demo broker (aedes), PKI generation (node-forge), the doctor and the
// consumer in its RSS.
/** `edgegw consume --topic` default: every gateway's telemetry (DESIGN.md §5). */
const DEFAULT_CONSUME_TOPIC = 'dt/edgegw/+/telemetry';

function buildProgram(): Command {
  const program = new Command('edgegw')
    .description('Edge gateway: Modbus/GPIO sensors → sealed on-disk queue → AWS IoT Core (MQTT/TLS)')
    .version(VERSION)
    .exitOverride()
    .showHelpAfterError('(run `edgegw --help` for usage)');
  const config = () =>
    new Option(
      '-c, --config <file>',
      'site configuration (default: $EDGEGW_CONFIG or /etc/edgegw/site.yaml)',
    );

  program
    .command('run')
    .description('run the daemon in the foreground (systemd ExecStart)')
    .addOption(config())
    .action(async (o: { config?: string }) => (await import('./run.js')).runCommand(o.config));
  program
    .command('check-config')
    .description('validate the configuration and print it resolved, secrets redacted')
    .addOption(config())
    .action(async (o: { config?: string }) =>
      (await import('./config-commands.js')).checkConfigCommand(o.config),
    );
  program
    .command('reload')
    .description('validate, then make the running daemon apply its configuration (as SIGHUP)')
    .addOption(config())
    .action(async (o: { config?: string }) => (await import('./reload.js')).reloadCommand(o.config));
  program
    .command('keygen')
    .description('write a new random queue key (mode 0600); never overwrites')
    .argument('<file>', 'where to write the key')
    .action(async (file: string) => (await import('./config-commands.js')).keygenCommand(file));
  program
    .command('status')
    .description('ask the running daemon for its status')
    .addOption(config())
    .option('--socket <path>', 'status socket (default: status.socket of the configuration)')
    .option('--json', 'one JSON document')
    .option('--watch', 'refresh every second until Ctrl-C')
    .action(async (o: { config?: string; socket?: string; json?: boolean; watch?: boolean }) =>
      (await import('./status-command.js')).statusCommand(o),
    );
  const sensors = program.command('sensors').description('commissioning: read sensors without the daemon');
  sensors
    .command('read')
    .description('read each sensor once and print id, bus, address, raw, value, unit, quality, error')
    .addOption(config())
    .option('--json', 'one JSON array')
    .argument('[ids...]', 'sensor ids (default: all)')
    .action(async (ids: string[], o: { config?: string; json?: boolean }) =>
      (await import('./sensors-read.js')).sensorsReadCommand(ids, o),
    );
  const queue = program.command('queue').description('offline queue figures (daemon stopped)');
  for (const verb of ['inspect', 'verify'] as const) {
    queue
      .command(verb)
      .description(verb === 'inspect' ? 'records, readings, bytes, seq range' : 'authenticate every record')
      .addOption(config())
      .option('--json', 'one JSON document')
      .action(async (o: { config?: string; json?: boolean }) =>
        (await import('./queue-commands.js')).queueCommand(verb, o),
      );
  }
  queue
    .command('repair')
    .description('recover a damaged queue: keep a copy, rebuild, keep every record that authenticates')
    .addOption(config())
    .action(async (o: { config?: string }) => (await import('./queue-commands.js')).queueRepairCommand(o));
  program
    .command('doctor')
    .description('check the site: config, keys, certificate, clock, disk, devices, broker (PASS/WARN/FAIL)')
    .addOption(config())
    .option('--json', 'one JSON array of {check, result, found, fix}')
    .action(async (o: { config?: string; json?: boolean }) => (await import('./doctor.js')).doctorCommand(o));
  program
    .command('provision')
    .description('fleet provisioning by claim: obtain and register the device certificate, write it')
    .addOption(config())
    .requiredOption('--claim-cert <file>', 'claim certificate (PEM)')
    .requiredOption('--claim-key <file>', 'claim private key (PEM, mode 0600 or 0400)')
    .requiredOption('--template <name>', 'fleet provisioning template')
    .option('--param <key=value>', 'template parameter (repeatable)', (v: string, prev: string[] = []) => [
      ...prev,
      v,
    ])
    .option('--no-csr', 'let AWS make the key (certificates/create) instead of a CSR made here')
    .option('--force', 'replace a working identity (the old files are kept as .previous)')
    .action(async (o: ProvisionArgs) => (await import('./identity.js')).provisionCommand(o));
  program
    .command('rotate-certificate')
    .description('make the running daemon rotate its device certificate (rolled back on any failure)')
    .addOption(config())
    .action(async (o: { config?: string }) => (await import('./identity.js')).rotateCertificateCommand(o));
  program
    .command('consume')
    .description('the reference consumer: subscribe (QoS 1), write deduplicated rows as NDJSON, gap report')
    .requiredOption('--url <url>', 'broker, mqtts://host[:port] (no user:pass@)')
    .requiredOption('--ca <file>', 'CA certificate(s) that signed the broker certificate (PEM)')
    .requiredOption('--cert <file>', 'client certificate (PEM)')
    .requiredOption('--key <file>', 'client private key (PEM, mode 0600 or 0400)')
    .option('--topic <filter>', 'topic filter', DEFAULT_CONSUME_TOPIC)
    .option(
      '--client-id <id>',
      'MQTT client id of the persistent session (default: edgegw-consume-<hostname>)',
    )
    .option('--state <file>', 'dedupe state, kept across restarts (default: in memory only)')
    .option('--out <file>', 'append rows to this file, fsync before each PUBACK (default: stdout)')
    .option('--notices', 'also write notice lines {gw, seq, t0, gap}')
    .action(async (o: ConsumeOptions) => (await import('./consume.js')).consumeCommand(o));
  program
    .command('decode')
    .description(
      'decode captured payloads (raw, or one JSON / {"data":base64} / base64 a line) to NDJSON rows',
    )
    .argument('[file]', 'input file, or - for stdin (default: stdin)')
    .option('--notices', 'also write notice lines {gw, seq, t0, gap}')
    .option('--dedupe', 'drop repeated (gw, seq) and print the gap report on stderr')
    .action(async (file: string | undefined, o: { notices?: boolean; dedupe?: boolean }) =>
      (await import('./decode.js')).decodeCommand(file, o),
    );
  program
    .command('demo')
    .description('the demo site: simulated sensors, a Modbus TCP simulator, an embedded TLS broker')
    .option('--seconds <n>', 'stop by itself after n seconds (default: run until Ctrl-C)')
    .action(async (o: { seconds?: string }) => (await import('./demo.js')).demoCommand(o));
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : Exit.OK;
  } catch (err) {
    return reportError(err);
  }
}

export function reportError(err: unknown): number {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return Exit.OK;
    if (err.code === 'commander.help') return Exit.OK;
    return Exit.USAGE;
  }
  if (err instanceof EdgegwError) {
    process.stderr.write(
      err.code === 'EDGEGW_E_CONFIG' ? `${err.message}\n` : `edgegw: ${err.message} [${err.code}]\n`,
    );
    return err.exitCode;
  }
  process.stderr.write(`edgegw: unexpected error: ${err instanceof Error ? err.message : String(err)}\n`);
  return Exit.SOFTWARE;
}

const code = await main(process.argv);
process.exitCode = code;
