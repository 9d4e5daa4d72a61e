// `edgegw reload [-c FILE]` (DESIGN.md §5): validates the file here first (errors printed as
// check-config prints them, exit 78), then asks the running daemon through its status socket to
// apply its configuration (exit 69 if none answers), and prints what changed or why it refused.

import { Exit } from '../errors.js';
import { requestReload } from '../status/server.js';
import { loadFromArg } from './config-arg.js';

export async function reloadCommand(configOpt: string | undefined): Promise<void> {
  // As the daemon's own reload checks it: key-file modes included.
  const loaded = await loadFromArg(configOpt, { keyModes: true });
  for (const w of loaded.warnings) {
    process.stderr.write(`${w.file}:${w.line}:${w.col}: ${w.path}: warning: ${w.message}\n`);
  }
  const r = await requestReload(loaded.config.status.socket);
  if (r.file !== '' && r.file !== loaded.file) {
    process.stderr.write(
      `edgegw: note: the daemon runs ${r.file}, not ${loaded.file}; it reloaded its own file\n`,
    );
  }
  if (r.applied) {
    const lines = [r.message, ...r.changed.map((c) => `  ${c}`), `config hash ${r.hash}`];
    process.stdout.write(`${lines.join('\n')}\n`);
    return;
  }
  const lines = [
    ...r.errors,
    ...(r.restartNeeded.length > 0 ? [`restart needed for: ${r.restartNeeded.join(', ')}`] : []),
    `edgegw: ${r.message}`,
  ];
  process.stderr.write(`${lines.join('\n')}\n`);
  process.exitCode = Exit.CONFIG;
}
