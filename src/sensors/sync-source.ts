// Where the daemon learns that the wall clock is good (config `clock.source`): a board without a
// battery-backed clock boots with the time it last shut down (or 1970) and is stepped by NTP later.
//  - systemd: systemd-timesyncd creates /run/systemd/timesync/synchronized once it synchronised;
//  - timedatectl: asks timedated (`timedatectl show -p NTPSynchronized --value`), which reads the
//    kernel's sync flag: right for chrony and ntpd too, but a process per check, so checked rarely;
//  - plausible: the clock reads later than this build (what `auto` falls back to without timesyncd);
//  - jump: never says synced; only a jump of the wall clock (clock-sync.ts) counts;
//  - off: the wall clock is trusted from the start (no correction; readings of an implausible
//    clock are marked bad by timestamps.ts, as before).

import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Clock } from '../types.js';

export interface SyncSource {
  /** What `edgegw status` names as the source. */
  readonly name: string;
  synced(): Promise<boolean>;
}

export type ClockSourceName = 'auto' | 'systemd' | 'timedatectl' | 'jump' | 'off';

export function systemdSource(file: string): SyncSource {
  return {
    name: 'systemd',
    synced: () => exists(file),
  };
}

export function timedatectlSource(): SyncSource {
  return {
    name: 'timedatectl',
    synced: () =>
      new Promise((resolve) => {
        execFile('timedatectl', ['show', '-p', 'NTPSynchronized', '--value'], { timeout: 5000 }, (err, out) =>
          resolve(err === null && out.trim() === 'yes'),
        );
      }),
  };
}

export function plausibleSource(clock: Clock, buildTime: number): SyncSource {
  return { name: 'plausible', synced: () => Promise.resolve(clock.now() >= buildTime) };
}

export const jumpOnlySource: SyncSource = { name: 'jump', synced: () => Promise.resolve(false) };

/**
 * The source `clock.source` names; null for `off`. `auto` is systemd when timesyncd runs (its
 * folder exists), else the build-time check, so a machine with a sane clock and no timesyncd
 * behaves as without any tracking.
 */
export async function syncSourceFor(
  name: ClockSourceName,
  syncFile: string,
  clock: Clock,
  buildTime: number,
): Promise<SyncSource | null> {
  switch (name) {
    case 'off':
      return null;
    case 'systemd':
      return systemdSource(syncFile);
    case 'timedatectl':
      return timedatectlSource();
    case 'jump':
      return jumpOnlySource;
    case 'auto':
      return (await exists(dirname(syncFile))) ? systemdSource(syncFile) : plausibleSource(clock, buildTime);
  }
}

/**
 * This boot's id (random per boot, from the kernel). Where there is none, one for this process:
 * then a restart cannot tell it is still the same boot, and its readings are published `unsynced`
 * rather than corrected by another boot's offset.
 */
export async function readBootId(file = '/proc/sys/kernel/random/boot_id'): Promise<string> {
  const id = await readFile(file, 'utf8').then(
    (s) => s.trim(),
    () => '',
  );
  return id !== '' ? id : `process-${randomUUID()}`;
}

/** Ms since boot (CLOCK_MONOTONIC on Linux: process.hrtime), the same for every process of a boot. */
export function sinceBoot(): number {
  return Number(process.hrtime.bigint() / 1000n) / 1000;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
