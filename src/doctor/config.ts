// The first check: the site file loads. Every other check that needs the config runs only then.

import { ConfigError, formatIssue, loadConfig, type LoadedConfig } from '../config/load.js';
import { EdgegwError } from '../errors.js';
import { fail, pass, warn, type CheckLine } from './check.js';

export async function checkConfig(file: string): Promise<{ line: CheckLine; loaded: LoadedConfig | null }> {
  let loaded: LoadedConfig;
  try {
    loaded = await loadConfig(file);
  } catch (err) {
    const fix = `edit the file, then run: edgegw check-config -c ${file}`;
    if (err instanceof ConfigError) {
      const n = err.issues.length;
      const found = [`${n} error${n === 1 ? '' : 's'}:`, ...err.issues.map(formatIssue)].join('\n');
      return { line: fail('config', found, fix), loaded: null };
    }
    // EDGEGW_E_CONFIG_READ and the like: their messages name the file and the cause, no contents.
    if (err instanceof EdgegwError) return { line: fail('config', err.message, fix), loaded: null };
    throw err;
  }
  if (loaded.warnings.length > 0) {
    const found = [`${loaded.file}: valid, with warnings:`, ...loaded.warnings.map(formatIssue)].join('\n');
    return { line: warn('config', found, `edgegw check-config -c ${loaded.file}`), loaded };
  }
  return { line: pass('config', `${loaded.file} is valid`), loaded };
}
