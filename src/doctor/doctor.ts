// `edgegw doctor`: every check, in the order a technician would fix things. It never opens the
// queue and never uses the daemon's client id, so it may run beside the daemon.

import type { LoadedConfig } from '../config/load.js';
import { EdgegwError } from '../errors.js';
import { fail, syscallCode, warn, type CheckLine } from './check.js';
import { checkBroker } from './broker.js';
import { checkCa, checkDeviceCertificate } from './certificate.js';
import { checkClockPlausible, checkClockSync, runCommand, type CommandRunner } from './clock.js';
import { checkConfig } from './config.js';
import { checkGpio, checkSerialPorts } from './devices.js';
import { keyFiles } from '../config/key-files.js';
import { checkIdentityFolders, checkKeyFile, checkKeyFolders } from './keys.js';
import { checkDataDir, checkSocketFolder } from './storage.js';

export interface DoctorOptions {
  configFile: string;
  /** Bound of each network step and of each command asked about the clock (ms). */
  timeoutMs?: number;
  now?: () => number;
  run?: CommandRunner;
}

export const DEFAULT_TIMEOUT_MS = 5000;

export async function runDoctor(opts: DoctorOptions): Promise<CheckLine[]> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const now = opts.now ?? Date.now;
  const { line, loaded } = await checkConfig(opts.configFile);
  const lines: CheckLine[] = [line];
  // The clock needs no config, and a wrong clock explains many of the lines after it.
  lines.push(checkClockPlausible(now()));
  lines.push(await checkClockSync(opts.run ?? runCommand(timeoutMs)));
  if (loaded === null) {
    lines.push(
      warn(
        'other checks',
        'skipped: keys, certificate, CA, data dir, status socket, serial, GPIO and broker need a valid configuration',
        `fix the configuration, then run: edgegw doctor -c ${opts.configFile}`,
      ),
    );
    return lines;
  }
  lines.push(...(await configChecks(loaded, now(), timeoutMs)));
  return lines;
}

async function configChecks(loaded: LoadedConfig, now: number, timeoutMs: number): Promise<CheckLine[]> {
  const site = loaded.config;
  const checks: [string, () => Promise<CheckLine | CheckLine[]>][] = [
    ...keyFiles(site).map((k): [string, () => Promise<CheckLine>] => [
      `key mode ${k.key}`,
      () => checkKeyFile(k),
    ]),
    ['key folder', () => checkKeyFolders(site)],
    ['identity folder', () => checkIdentityFolders(site)],
    ['certificate', () => checkDeviceCertificate(site, now)],
    ['ca', () => checkCa(site, now)],
    ['data dir', () => checkDataDir(site)],
    ['status socket folder', () => checkSocketFolder(site)],
    ['serial', () => checkSerialPorts(site)],
    ['gpio', () => checkGpio(site, loaded.profile)],
    ['broker', () => checkBroker(site, timeoutMs)],
  ];
  const lines: CheckLine[] = [];
  for (const [name, run] of checks) lines.push(...(await guarded(name, run)));
  return lines;
}

/** A check that throws (a file vanished under it, an unexpected errno) is its own FAIL, not the end of the report. */
async function guarded(name: string, run: () => Promise<CheckLine | CheckLine[]>): Promise<CheckLine[]> {
  try {
    const out = await run();
    return Array.isArray(out) ? out : [out];
  } catch (err) {
    const why = err instanceof EdgegwError ? err.message : `unexpected error (${syscallCode(err, 'a bug')})`;
    return [
      fail(name, `the check could not run: ${why}`, `run it again; if it persists, report it with this line`),
    ];
  }
}

export const anyFailed = (lines: readonly CheckLine[]): boolean => lines.some((l) => l.result === 'FAIL');
