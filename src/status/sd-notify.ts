// sd_notify(3) for a Type=notify unit, as zigbee2mqtt's sd-notify does it: READY=1 once started,
// WATCHDOG=1 at half of WATCHDOG_USEC, STOPPING=1 when the clean stop begins. Without
// NOTIFY_SOCKET (not under systemd) every call is a no-op.
//
// Abstract socket names (NOTIFY_SOCKET=@name) are not supported: unix-dgram copies the path with
// strncpy (stops at the leading NUL) and passes the full sockaddr length, so it cannot address an
// abstract name. systemd itself uses a path (/run/systemd/notify); with an abstract name this logs
// one warning and stays silent, and systemd's start timeout reports it.

import type { Logger } from 'pino';
import type { Lifecycle } from '../types.js';
import { createUnixDgramSocket, type UnixDgramSocket } from './unix-dgram.js';

export interface SdNotifyOptions {
  /** Where NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID come from; default process.env. */
  env?: NodeJS.ProcessEnv;
  log?: Logger;
  /** Our pid, compared with WATCHDOG_PID; default process.pid. */
  pid?: number;
}

export class SdNotify implements Lifecycle {
  private readonly env: NodeJS.ProcessEnv;
  private readonly log: Logger | undefined;
  private readonly pid: number;
  private socket: UnixDgramSocket | null = null;
  private path: string | null = null;
  private watchdog: NodeJS.Timeout | null = null;
  private warned = false;

  constructor(opts: SdNotifyOptions = {}) {
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
      this.watchdog = setInterval(() => this.send('WATCHDOG=1'), every);
      this.watchdog.unref();
    }
    return Promise.resolve();
  }

  stop(): Promise<void> {
    if (this.watchdog !== null) clearInterval(this.watchdog);
    this.watchdog = null;
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
