import { audit } from '../audit.js';
import { renderResolvedConfig } from '../config/redact.js';
import { createLogger } from '../log.js';
import { writeNewKeyFile } from '../seal/keyfile.js';
import { loadFromArg } from './config-arg.js';

/** `edgegw check-config`: validate, print warnings to stderr and the resolved config to stdout. */
export async function checkConfigCommand(configOpt: string | undefined): Promise<void> {
  const loaded = await loadFromArg(configOpt);
  for (const w of loaded.warnings) {
    process.stderr.write(`${w.file}:${w.line}:${w.col}: ${w.path}: warning: ${w.message}\n`);
  }
  process.stdout.write(renderResolvedConfig(loaded));
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
