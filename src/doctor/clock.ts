// The wall clock: plausible (not before this build, as the timestamp guard sees it) and kept in
// sync. Whether it is in sync is the kernel's word (adjtimex's STA_UNSYNC), asked through systemd's
// timedatectl, else the adjtimex tool; where neither answers, doctor says it cannot tell.

import { execFile } from 'node:child_process';
import { BUILD_TIME } from '../sensors/timestamps.js';
import { fail, pass, warn, type CheckLine } from './check.js';

export function checkClockPlausible(now: number, buildTime = BUILD_TIME): CheckLine {
  const reads = new Date(now).toISOString();
  if (now < buildTime)
    return fail(
      'clock',
      `reads ${reads}, before this build (${new Date(buildTime).toISOString()}): no RTC or NTP yet`,
      'timedatectl set-ntp true (or set it: date -s YYYY-MM-DDTHH:MM:SSZ)',
    );
  return pass('clock', `reads ${reads}`);
}

export type SyncState = 'synchronised' | 'unsynchronised' | 'unknown';

/** Runs a command, resolving its stdout, or null when it is missing, fails or times out. */
export type CommandRunner = (cmd: string, args: string[]) => Promise<string | null>;

export const runCommand =
  (timeoutMs: number): CommandRunner =>
  (cmd, args) =>
    new Promise((resolve) => {
      execFile(cmd, args, { timeout: timeoutMs, env: { ...process.env, LC_ALL: 'C' } }, (err, stdout) =>
        resolve(err ? null : stdout),
      );
    });

/** `NTPSynchronized=yes|no` from `timedatectl show`. */
export function parseTimedatectl(out: string): SyncState {
  const v = /^NTPSynchronized=(\w+)$/m.exec(out)?.[1];
  return v === 'yes' ? 'synchronised' : v === 'no' ? 'unsynchronised' : 'unknown';
}

/** STA_UNSYNC (0x40) in the `status:` line of `adjtimex --print`. */
export function parseAdjtimex(out: string): SyncState {
  const v = /^\s*status:\s*(\d+)\s*$/m.exec(out)?.[1];
  if (v === undefined) return 'unknown';
  return (Number(v) & 0x40) === 0 ? 'synchronised' : 'unsynchronised';
}

export async function clockSync(run: CommandRunner): Promise<{ state: SyncState; source: string }> {
  const td = await run('timedatectl', ['show']);
  const fromTd = td === null ? 'unknown' : parseTimedatectl(td);
  if (fromTd !== 'unknown') return { state: fromTd, source: 'timedatectl' };
  const adj = await run('adjtimex', ['--print']);
  const fromAdj = adj === null ? 'unknown' : parseAdjtimex(adj);
  if (fromAdj !== 'unknown') return { state: fromAdj, source: 'adjtimex' };
  return { state: 'unknown', source: '' };
}

export async function checkClockSync(run: CommandRunner): Promise<CheckLine> {
  const { state, source } = await clockSync(run);
  switch (state) {
    case 'synchronised':
      return pass('clock sync', `synchronised (${source})`);
    case 'unsynchronised':
      return warn(
        'clock sync',
        `not synchronised (${source}): timestamps and certificate dates may be off`,
        'timedatectl set-ntp true; check that NTP (UDP 123) reaches a time server',
      );
    case 'unknown':
      return warn(
        'clock sync',
        'cannot tell: neither timedatectl nor adjtimex answered',
        'run an NTP client (systemd-timesyncd or chrony); check with: timedatectl',
      );
  }
}
