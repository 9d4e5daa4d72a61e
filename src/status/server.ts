// The control socket (DESIGN.md §5): a Unix stream socket answering newline-delimited JSON requests
// such as {"cmd":"status"}. It is the only place that shows each sensor's last value (§2.6), so it
// is mode 0660 and never world-accessible, not even for a moment: it is bound inside a private
// folder, chmod'ed, then renamed into place.

import { chmod, lstat, mkdir, mkdtemp, rename, rm, unlink } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { basename, dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { EdgegwError, Exit } from '../errors.js';
import type { Lifecycle } from '../types.js';
import type { StatusModel, StatusSnapshot } from './model.js';
import { isReloadOutcome, type ReloadOutcome } from '../reload.js';

/** A request line longer than this is refused: the protocol's commands are tiny. */
const MAX_REQUEST_BYTES = 4096;
/** Idle clients are dropped so a forgotten `nc` cannot hold a connection forever. */
const IDLE_MS = 60_000;
/** sun_path is 108 bytes on Linux, including the terminating NUL. */
const MAX_SOCKET_PATH = 107;
const SOCKET_MODE = 0o660;
/**
 * Answers a connection may have waiting to be read: past this the server stops reading its
 * requests until the client reads (backpressure), so a client that sends and never reads costs at
 * most this plus one answer plus one read chunk, never memory that grows with its requests.
 */
const MAX_PENDING_BYTES = 64 * 1024;
/** Connections at once; past it a stalled client makes room, else the newcomer is refused. */
const MAX_CLIENTS = 16;

interface Client {
  /** Its answers are not being read: reading its requests is paused. */
  stalled: boolean;
}

export interface StatusServerOptions {
  socketPath: string;
  model: StatusModel;
  log: Logger;
  /** {"cmd":"reload"}: the daemon reads its configuration again (operations issue). */
  reload?: () => Promise<ReloadOutcome>;
  /** {"cmd":"rotate-certificate"}: the daemon rotates its certificate (identity issue). */
  rotate?: () => Promise<Record<string, string>>;
}

export class StatusServer implements Lifecycle {
  private readonly opts: StatusServerOptions;
  private server: Server | null = null;
  private inode: number | null = null;
  /** Insertion order: the oldest connection first. */
  private readonly clients = new Map<Socket, Client>();

  constructor(opts: StatusServerOptions) {
    this.opts = opts;
  }

  async start(): Promise<void> {
    if (this.server !== null) return;
    const path = this.opts.socketPath;
    const dir = dirname(path);
    await mkdir(dir, { recursive: true, mode: 0o750 }).catch((err: unknown) => {
      throw unavailable(`cannot create the status socket folder ${dir}: ${errCode(err)}`, err);
    });
    await removeStale(path);

    const server = createServer((socket) => this.serve(socket));
    server.on('error', (err) =>
      this.opts.log.warn({ code: 'EDGEGW_E_STATUS_UNAVAILABLE', err: errCode(err) }, 'status socket error'),
    );
    try {
      await bindPrivately(server, path);
    } catch (err) {
      server.close();
      if (err instanceof EdgegwError) throw err;
      throw unavailable(`cannot listen on the status socket ${path}: ${errCode(err)}`, err);
    }
    this.server = server;
    this.inode = (await lstat(path)).ino;
    this.opts.log.info({ socket: path }, 'status socket listening');
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (server === null) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const c of this.clients.keys()) c.destroy();
    await closed;
    // Unlink only our own socket, never one a later process put in its place.
    const st = await lstat(this.opts.socketPath).catch(() => null);
    if (st !== null && st.isSocket() && st.ino === this.inode)
      await unlink(this.opts.socketPath).catch(() => undefined);
    this.inode = null;
  }

  /** Bytes of answers written but not yet taken by clients (bounded per connection). */
  get bufferedBytes(): number {
    let n = 0;
    for (const c of this.clients.keys()) n += c.writableLength;
    return n;
  }

  get connections(): number {
    return this.clients.size;
  }

  private serve(socket: Socket): void {
    if (this.clients.size >= MAX_CLIENTS && !this.evictStalled()) {
      socket.end(`${JSON.stringify({ error: 'too many status connections' })}\n`);
      return;
    }
    const client: Client = { stalled: false };
    this.clients.set(socket, client);
    socket.on('close', () => this.clients.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.setTimeout(IDLE_MS, () => socket.destroy());
    socket.setEncoding('utf8');
    let buffer = '';
    /** A reload is being answered: later requests wait, so answers keep the order of requests. */
    let busy = false;
    // Answers the complete lines buffered so far, until the client falls behind.
    const work = () => {
      let nl: number;
      while (!busy && socket.writableLength < MAX_PENDING_BYTES && (nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl).trim();
        buffer = buffer.slice(nl + 1);
        if (line === '') continue;
        const answer = this.answer(line);
        if (!(answer instanceof Promise)) {
          socket.write(`${JSON.stringify(answer)}\n`);
          continue;
        }
        busy = true;
        socket.pause(); // nothing more is read (or buffered) until this answer is written
        void answer
          .catch(() => ({ error: 'the request failed unexpectedly; see the daemon log' }))
          .then((a) => {
            busy = false;
            if (!socket.destroyed) socket.write(`${JSON.stringify(a)}\n`);
            work();
          });
      }
      if (busy) return;
      if (socket.writableLength >= MAX_PENDING_BYTES) {
        // Stop reading: unread requests stay in the kernel and the client's writes block.
        client.stalled = true;
        socket.pause();
        return;
      }
      client.stalled = false;
      socket.resume();
      if (buffer.length > MAX_REQUEST_BYTES) {
        socket.end(`${JSON.stringify({ error: 'request too long' })}\n`);
        buffer = '';
      }
    };
    socket.on('drain', work);
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      work();
    });
  }

  /** Drops the longest-stalled client (one that does not read its answers) to admit another. */
  private evictStalled(): boolean {
    for (const [socket, c] of this.clients) {
      if (!c.stalled) continue;
      this.opts.log.debug('status socket: dropping a client that does not read its answers');
      socket.destroy();
      this.clients.delete(socket);
      return true;
    }
    return false;
  }

  private answer(line: string): unknown {
    // Only reload is asynchronous; everything else answers at once.
    let cmd: unknown;
    try {
      const req: unknown = JSON.parse(line);
      cmd = typeof req === 'object' && req !== null ? (req as { cmd?: unknown }).cmd : undefined;
    } catch {
      return { error: 'requests are JSON lines like {"cmd":"status"}' };
    }
    if (cmd === 'status') return this.opts.model.snapshot();
    const reload = this.opts.reload;
    if (cmd === 'reload' && reload !== undefined) {
      this.opts.log.info({ via: 'status socket' }, 'reload requested');
      return reload();
    }
    const rotate = this.opts.rotate;
    if (cmd === 'rotate-certificate' && rotate !== undefined) {
      this.opts.log.info({ via: 'status socket' }, 'certificate rotation requested');
      return rotate().then(
        (statusDetails): RotationAnswer => ({ rotated: true, statusDetails }),
        (err: unknown): RotationAnswer => ({
          rotated: false,
          code: err instanceof EdgegwError ? err.code : 'EDGEGW_E_UNEXPECTED',
          message: err instanceof Error ? err.message : String(err),
        }),
      );
    }
    // Echo the command only when it is a short string: never reflect arbitrary input back.
    const shown = typeof cmd === 'string' && cmd.length <= 32 ? ` ${JSON.stringify(cmd)}` : '';
    const known = ['status', ...(reload ? ['reload'] : []), ...(rotate ? ['rotate-certificate'] : [])];
    return { error: `unknown cmd${shown}; known: ${known.join(', ')}` };
  }
}

/**
 * Asks the daemon listening on `socketPath` for its status. Not running, refused or no answer
 * within `timeoutMs` → EDGEGW_E_STATUS_UNAVAILABLE with exit 69.
 */
export function queryStatus(socketPath: string, timeoutMs = 2000): Promise<StatusSnapshot> {
  return ask(socketPath, 'status', timeoutMs, parseReply);
}

/** How long `edgegw reload` waits for the daemon's answer (sensor groups restart within it). */
export const RELOAD_WAIT_MS = 30_000;

/**
 * Asks the daemon to reload its configuration; its answer says what changed or why it refused.
 * Errors as queryStatus (exit 69). The wait is longer: sensor groups restart within it.
 */
export function requestReload(socketPath: string, timeoutMs = RELOAD_WAIT_MS): Promise<ReloadOutcome> {
  return ask(socketPath, 'reload', timeoutMs, (line) => {
    const r = parseJson(line);
    if (typeof r === 'string') return r;
    if (typeof r.error === 'string') return `refused the request: ${r.error}`;
    return isReloadOutcome(r) ? r : 'sent an answer that is not a reload result';
  });
}

/** The daemon's answer to {"cmd":"rotate-certificate"}. */
export type RotationAnswer =
  | { rotated: true; statusDetails: Record<string, string> }
  | { rotated: false; code: string; message: string };

/**
 * Asks the daemon to rotate its certificate on its live connection. The wait, given by the caller,
 * covers the rotation's whole bounded time (a reload queued ahead of it, the replies, the proof).
 * A daemon that took the request but has not answered within it is still rotating: that is said
 * (EDGEGW_E_ROTATION), not that no daemon runs.
 */
export function requestRotation(socketPath: string, timeoutMs: number): Promise<RotationAnswer> {
  const seconds = Math.round(timeoutMs / 1000);
  const late = () =>
    new EdgegwError(
      'EDGEGW_E_ROTATION',
      `the edgegw daemon at ${socketPath} is running, but its certificate rotation had not ended after ` +
        `${seconds} s: it is still under way and ends on its own (rolled back if unproven); see ` +
        '`edgegw status` for the certificate in use, and the certificate-rotation audit entry in the log',
    );
  return ask(
    socketPath,
    'rotate-certificate',
    timeoutMs,
    (line) => {
      const r = parseJson(line);
      if (typeof r === 'string') return r;
      if (typeof r.error === 'string') return `refused the request: ${r.error}`;
      if (r.rotated === true && typeof r.statusDetails === 'object') return r as unknown as RotationAnswer;
      if (r.rotated === false && typeof r.message === 'string') return r as unknown as RotationAnswer;
      return 'sent an answer that is not a rotation result';
    },
    late,
  );
}

/** `late`: the error when the daemon took the request but did not answer in time (default: not running). */
function ask<T>(
  socketPath: string,
  cmd: string,
  timeoutMs: number,
  parse: (line: string) => T | string,
  late?: () => Error,
): Promise<T> {
  const notRunning = (cause?: unknown) =>
    unavailable(`no edgegw daemon answers at ${socketPath} (is it running? systemctl status edgegw)`, cause);
  return new Promise((resolve, reject) => {
    const socket = createConnection(socketPath);
    let buffer = '';
    let done = false;
    let sent = false;
    const finish = (err: Error | null, value?: T) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (err !== null) reject(err);
      else resolve(value as T);
    };
    const timer = setTimeout(
      () =>
        finish(
          sent && late !== undefined ? late() : notRunning(new Error(`no answer within ${timeoutMs} ms`)),
        ),
      timeoutMs,
    );
    socket.setEncoding('utf8');
    socket.on('connect', () => {
      sent = true;
      socket.write(`${JSON.stringify({ cmd })}\n`);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EACCES' || err.code === 'EPERM') {
        finish(
          unavailable(
            `cannot open ${socketPath}: permission denied (run as root or as a member of its group)`,
            err,
          ),
        );
      } else finish(notRunning(err));
    });
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const nl = buffer.indexOf('\n');
      if (nl < 0) return;
      const reply = parse(buffer.slice(0, nl));
      if (typeof reply === 'string') finish(unavailable(`the edgegw daemon at ${socketPath} ${reply}`));
      else finish(null, reply);
    });
    socket.on('end', () => finish(notRunning(new Error('closed without an answer'))));
  });
}

function parseJson(line: string): Record<string, unknown> | string {
  let reply: unknown;
  try {
    reply = JSON.parse(line);
  } catch {
    return 'sent an answer that is not JSON';
  }
  if (typeof reply !== 'object' || reply === null) return 'sent an answer that is not an object';
  return reply as Record<string, unknown>;
}

function parseReply(line: string): StatusSnapshot | string {
  const reply = parseJson(line);
  if (typeof reply === 'string') return reply;
  const r = reply;
  if (typeof r.error === 'string') return `refused the request: ${r.error}`;
  if (typeof r.gateway !== 'string' || !Array.isArray(r.sensors))
    return 'sent an answer that is not a status object';
  return reply as unknown as StatusSnapshot;
}

/**
 * Removes a socket file left by a process that died; refuses when a live daemon answers on it,
 * and never removes something that is not a socket.
 */
async function removeStale(path: string): Promise<void> {
  const st = await lstat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw unavailable(`cannot check the status socket ${path}: ${errCode(err)}`, err);
  });
  if (st === null) return;
  if (!st.isSocket()) throw unavailable(`${path} exists and is not a socket; refusing to replace it`);
  const state = await probe(path);
  if (state === 'live') {
    throw unavailable(`another edgegw is running: a daemon answers at ${path} (systemctl status edgegw)`);
  }
  if (state !== 'stale') throw unavailable(`cannot check the status socket ${path}: ${state}`);
  await unlink(path);
}

/** 'live' if something accepts connections on `path`, 'stale' if nothing listens, else the error code. */
function probe(path: string): Promise<string> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    s.once('connect', () => {
      s.destroy();
      resolve('live');
    });
    s.once('error', (err: NodeJS.ErrnoException) => {
      resolve(err.code === 'ECONNREFUSED' || err.code === 'ENOENT' ? 'stale' : (err.code ?? 'error'));
    });
  });
}

/**
 * Binds `server` at `path` with mode 0660 from its first moment: bind inside a fresh 0700 folder
 * next to it, chmod, then rename into place (rename keeps the socket bound). A path too long
 * for the temporary name is bound directly and chmod'ed at once; the 0750 folder covers the gap.
 */
async function bindPrivately(server: Server, path: string): Promise<void> {
  const dir = dirname(path);
  const tmp = await mkdtemp(join(dir, `.${basename(path).slice(0, 8)}-`));
  const tmpPath = join(tmp, 's');
  try {
    if (Buffer.byteLength(tmpPath) > MAX_SOCKET_PATH) {
      await listen(server, path);
      await chmod(path, SOCKET_MODE);
    } else {
      await listen(server, tmpPath);
      await chmod(tmpPath, SOCKET_MODE);
      await rename(tmpPath, path);
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function unavailable(message: string, cause?: unknown): EdgegwError {
  return new EdgegwError(
    'EDGEGW_E_STATUS_UNAVAILABLE',
    message,
    Exit.UNAVAILABLE,
    cause === undefined ? undefined : { cause },
  );
}

function errCode(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ?? e.message ?? String(err);
}
