// `edgegw doctor`: every check, in the order a technician would fix things. It never opens the
// queue and never uses the daemon's client id, so it may run beside the daemon.

import type { LoadedConfig } from '../config/load.js';
import { fail, warn, type CheckLine } from './check.js';
import { checkBroker } from './broker.js';
import { checkCa, checkDeviceCertificate } from './certificate.js';
import { checkClockPlausible, checkClockSync, runCommand, type CommandRunner } from './clock.js';
import { checkConfig } from './config.js';
import { checkGpio, checkSerialPorts } from './devices.js';
import { checkKeyFile, checkKeyFolders, keyFiles } from './keys.js';
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
  const lines: CheckLine[] = [];
  for (const k of keyFiles(site)) lines.push(await checkKeyFile(k));
  lines.push(...(await checkKeyFolders(site)));
  lines.push(...(await checkDeviceCertificate(site, now)));
  lines.push(await checkCa(site, now));
  lines.push(...(await checkDataDir(site)));
  lines.push(await checkSocketFolder(site));
  lines.push(...(await checkSerialPorts(site)));
  lines.push(...(await checkGpio(site, loaded.profile).catch((err: unknown) => [gpioError(err)])));
  lines.push(...(await checkBroker(site, timeoutMs)));
  return lines;
}

function gpioError(err: unknown): CheckLine {
  return fail(
    'gpio',
    err instanceof Error ? err.message : String(err),
    'check the gpio pins and gateway.profile',
  );
}

export const anyFailed = (lines: readonly CheckLine[]): boolean => lines.some((l) => l.result === 'FAIL');
