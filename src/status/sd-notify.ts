// sd_notify(3) for a Type=notify unit: READY=1 once started, STOPPING=1 when the clean stop begins,
// STATUS= every few seconds, and WATCHDOG=1 at half of WATCHDOG_USEC, but only while the health
// check (the ProgressMonitor, progress.ts) finds the pipeline making progress: a stall stops the
// pings, and systemd restarts the service after WatchdogSec. A bare timer would ping from a daemon
// whose pipeline hangs for ever. Without NOTIFY_SOCKET (not under systemd) every call is a no-op.
//
// Abstract socket names (NOTIFY_SOCKET=@name) are not supported: unix-dgram copies the path with
// strncpy (stops at the leading NUL) and passes the full sockaddr length, so it cannot address an
// abstract name. systemd itself uses a path (/run/systemd/notify); with an abstract name this logs
// one warning and stays silent, and systemd's start timeout reports it.

import type { Logger } from 'pino';
import type { Lifecycle } from '../types.js';
import { HEALTHY, type Health, type HealthCheck } from './progress.js';
import { createUnixDgramSocket, type UnixDgramSocket } from './unix-dgram.js';

/** How often STATUS= is refreshed. */
export const STATUS_EVERY_MS = 5000;

export interface SdNotifyOptions {
  /** Where NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID come from; default process.env. */
  env?: NodeJS.ProcessEnv;
  log?: Logger;
  /** Our pid, compared with WATCHDOG_PID; default process.pid. */
  pid?: number;
  /** Asked before every WATCHDOG=1; no ping while it finds a stall. Default: always healthy. */
  health?: HealthCheck;
  /** The STATUS= text, sent every statusEveryMs (prefixed with the stall while there is one). */
  statusText?: () => string;
  statusEveryMs?: number;
}

export class SdNotify implements Lifecycle {
  private readonly env: NodeJS.ProcessEnv;
  private readonly log: Logger | undefined;
  private readonly pid: number;
  private socket: UnixDgramSocket | null = null;
  private path: string | null = null;
  private watchdog: NodeJS.Timeout | null = null;
  private statusTimer: NodeJS.Timeout | null = null;
  private warned = false;
  private readonly opts: SdNotifyOptions;
  private health: Health = HEALTHY;

  constructor(opts: SdNotifyOptions = {}) {
    this.opts = opts;
    this.env = opts.env ?? process.env;
    this.log = opts.log;
    this.pid = opts.pid ?? process.pid;
  }

  /** True when started under a notify socket we can reach. */
  get enabled(): boolean {
    return this.socket !== null;
  }

  /** The watchdog ping interval in ms (half of WATCHDOG_USEC), or null when none is asked for. */
  get watchdogIntervalMs(): number | null {
    const usec = Number(this.env.WATCHDOG_USEC);
    if (!Number.isFinite(usec) || usec <= 0) return null;
    const forPid = this.env.WATCHDOG_PID;
    if (forPid !== undefined && forPid !== '' && Number(forPid) !== this.pid) return null;
    return Math.max(1, Math.floor(usec / 2000));
  }

  start(): Promise<void> {
    if (this.socket !== null) return Promise.resolve();
    const path = this.env.NOTIFY_SOCKET;
    if (path === undefined || path === '') return Promise.resolve();
    if (path.startsWith('@')) {
      this.log?.warn(
        { notifySocket: path },
        'sd_notify: abstract NOTIFY_SOCKET names are not supported; not notifying',
      );
      return Promise.resolve();
    }
    try {
      const socket = createUnixDgramSocket();
      socket.on('error', (err) => this.warnOnce(err));
      // systemd may drop a notification when its queue is full; the next one carries the state.
      socket.on('congestion', () => undefined);
      this.socket = socket;
      this.path = path;
    } catch (err) {
      this.warnOnce(err);
      return Promise.resolve();
    }
    const every = this.watchdogIntervalMs;
    if (every !== null) {
      this.watchdog = setInterval(() => this.watchdogTick(every), every);
      this.watchdog.unref();
    }
    if (this.opts.statusText !== undefined) {
      this.statusTimer = setInterval(() => this.refreshStatus(), this.opts.statusEveryMs ?? STATUS_EVERY_MS);
      this.statusTimer.unref();
    }
    return Promise.resolve();
  }

  stop(): Promise<void> {
    if (this.watchdog !== null) clearInterval(this.watchdog);
    this.watchdog = null;
    if (this.statusTimer !== null) clearInterval(this.statusTimer);
    this.statusTimer = null;
    const socket = this.socket;
    this.socket = null;
    this.path = null;
    try {
      socket?.close();
    } catch {
      // Already closed: nothing left to release.
    }
    return Promise.resolve();
  }

  /** READY=1 (with an optional STATUS= line for `systemctl status`). */
  ready(status?: string): void {
    this.send(status === undefined ? 'READY=1' : `READY=1\n${statusLine(status)}`);
  }

  /** STOPPING=1: the clean stop has begun. */
  stopping(): void {
    this.send('STOPPING=1');
  }

  /** STATUS=…: a one-line free-form state shown by `systemctl status`. */
  status(text: string): void {
    this.send(statusLine(text));
  }

  /** The current STATUS= text, with the stall first while there is one. */
  statusNow(): string | null {
    const text = this.opts.statusText?.();
    if (text === undefined) return null;
    return this.health.healthy ? text : `STALLED: ${this.health.reason ?? '?'}; ${text}`;
  }

  private refreshStatus(): void {
    let text: string | null;
    try {
      text = this.statusNow();
    } catch (err) {
      this.warnOnce(err);
      return;
    }
    if (text !== null) this.status(text);
  }

  private watchdogTick(intervalMs: number): void {
    const was = this.health;
    let now: Health;
    try {
      now = this.opts.health?.check(intervalMs) ?? HEALTHY;
    } catch (err) {
      // A probe that throws is a bug, not a stall: keep pinging rather than restart on it.
      this.warnOnce(err);
      now = HEALTHY;
    }
    this.health = now;
    if (now.healthy) {
      if (!was.healthy) this.log?.info('pipeline making progress again; watchdog pings resumed');
      this.send('WATCHDOG=1');
      return;
    }
    if (was.healthy) {
      this.log?.error(
        { code: 'EDGEGW_E_WATCHDOG', reason: now.reason },
        'pipeline stalled; watchdog ping withheld, systemd restarts the service unless it recovers',
      );
      this.refreshStatus();
    }
  }

  private send(message: string): void {
    const socket = this.socket;
    const path = this.path;
    if (socket === null || path === null) return;
    const buf = Buffer.from(message, 'utf8');
    try {
      socket.send(buf, 0, buf.length, path, (err) => {
        if (err !== undefined && err !== null) this.warnOnce(err);
      });
    } catch (err) {
      this.warnOnce(err);
    }
  }

  private warnOnce(err: unknown): void {
    if (this.warned) return;
    this.warned = true;
    const e = err as NodeJS.ErrnoException;
    this.log?.warn(
      { err: e.code ?? e.message ?? String(err) },
      'sd_notify failed; systemd will not hear from edgegw',
    );
  }
}

function statusLine(text: string): string {
  return `STATUS=${text.replace(/[\r\n]+/g, ' ')}`;
}
