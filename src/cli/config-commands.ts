import { audit } from '../audit.js';
import { renderResolvedConfig } from '../config/redact.js';
import { createLogger } from '../log.js';
import { writeNewKeyFile } from '../seal/keyfile.js';
import { loadFromArg } from './config-arg.js';
import { bootOverlay } from '../fleet/fleet.js';
import { loadConfig } from '../config/load.js';
import { overlayPath } from '../fleet/overlay-store.js';
import { loadQueueKeyring } from '../seal/rotated-keys.js';

/** `edgegw check-config`: validate, print warnings to stderr and the resolved config to stdout. */
export async function checkConfigCommand(configOpt: string | undefined): Promise<void> {
  // The key files' modes too: `edgegw run` refuses a key its group or others may read.
  const base = await loadFromArg(configOpt, { keyModes: true });
  // With fleet.shadow, what runs is the file plus the stored remote overlay: shown with its source.
  const log = createLogger({ level: 'warn', destination: process.stderr });
  // The overlay is sealed with the queue keys: read as `queue verify` reads them.
  const boot = await bootOverlay(
    base,
    (o) => loadConfig(base.file, { overrides: { ...o }, keyModes: true }),
    () => loadQueueKeyring(base.config.queue),
    log,
  );
  const loaded = boot.loaded;
  for (const w of loaded.warnings) {
    process.stderr.write(`${w.file}:${w.line}:${w.col}: ${w.path}: warning: ${w.message}\n`);
  }
  process.stdout.write(renderResolvedConfig(loaded));
  const shadow = base.config.fleet.shadow;
  if (shadow !== undefined && boot.unreadable !== undefined) {
    // Said on stdout beside the config: "the site file, except: none" would be a guess.
    const hint = `# sources: unknown: the stored remote overlay could not be read (${boot.unreadable.replace(/; it is ignored$/, '')}); the daemon may run other values than shown. Run check-config as the daemon's user, e.g. sudo -u edgegw edgegw check-config -c ${base.file}\n`;
    process.stdout.write(hint);
    process.stderr.write(hint.slice(2));
  } else if (shadow !== undefined) {
    const keys = Object.keys(boot.overlay).sort();
    const from = `shadow ${shadow.name} v${boot.stored?.shadowVersion ?? 0} (${overlayPath(base.config.gateway.dataDir)})`;
    process.stdout.write(`# sources: the site file, except: ${keys.length === 0 ? 'none' : ''}\n`);
    if (boot.refused !== null) {
      process.stdout.write(`# stored overlay refused (EDGEGW_E_FLEET_OVERLAY): ${boot.refused}\n`);
    }
    for (const k of keys) process.stdout.write(`#   ${k}: from ${from}\n`);
    if (shadow.localOnly.length > 0) {
      process.stdout.write(`# local-only (the site file always wins): ${shadow.localOnly.join(', ')}\n`);
    }
  }
  process.stderr.write(`${loaded.file}: configuration OK\n`);
}

/** `edgegw keygen FILE`: 32 random bytes, mode 0600, never overwrites (exit 73). */
export async function keygenCommand(file: string): Promise<void> {
  await writeNewKeyFile(file);
  // On stderr, as JSON, like every log line of a command: the journal keeps it when the installer runs it.
  audit(
    createLogger({ level: 'info', destination: process.stderr }),
    'keygen',
    { path: file },
    'queue key generated',
  );
  process.stderr.write(`wrote a new queue key to ${file} (mode 0600); set queue.keyFile to it\n`);
}
