// A fake sysfs GPIO tree and a child process that sees it at /sys/class/gpio.
//
// onoff hardcodes /sys/class/gpio, so the child runs under `unshare --mount --propagation private`
// (needs root) and bind-mounts the fake tree's parent over /sys/class; the parent test keeps
// writing the same files from outside. A regular file cannot emulate the kernel's `export`
// (creating gpioN/ when a number is written to it), so gpioN/ folders are created up front: onoff
// checks that the folder exists and then skips the export write (node_modules/onoff/onoff.js,
// exportGpio). Regular files cannot be epolled either, so the driver falls back to polling the
// value through onoff's readSync.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface FakeSysfs {
  /** Folder bind-mounted over /sys/class in the child. */
  readonly classDir: string;
  /** The fake /sys/class/gpio (absent when made with `noGpio`). */
  readonly gpioDir: string;
  setValue(gpio: number, v: 0 | 1): void;
  /**
   * Whether the value file was read after it was last written: its atime is past its mtime (relatime
   * updates atime on the first read after a write; both have the kernel's coarse clock, so a read
   * in the write's own tick does not count and the next poll's does).
   */
  readSinceWritten(gpio: number): boolean;
  file(gpio: number, name: 'direction' | 'edge' | 'active_low' | 'value'): string;
  rootFile(name: 'export' | 'unexport'): string;
  cleanup(): void;
}

export interface FakeSysfsOptions {
  /** Pins to pre-export with their initial value. */
  pins?: Record<number, 0 | 1>;
  /** No gpio folder at all: a board without sysfs GPIO. */
  noGpio?: boolean;
  /** Mode of the export file (e.g. 0o444 to refuse a non-root user). */
  exportMode?: number;
}

export function makeFakeSysfs(opts: FakeSysfsOptions = {}): FakeSysfs {
  const classDir = mkdtempSync(join(tmpdir(), 'edgegw-sysfs-'));
  chmodSync(classDir, 0o755); // the child may drop to an unprivileged user
  const gpioDir = join(classDir, 'gpio');
  if (opts.noGpio !== true) {
    mkdirSync(gpioDir);
    writeFileSync(join(gpioDir, 'export'), '', { mode: opts.exportMode ?? 0o644 });
    chmodSync(join(gpioDir, 'export'), opts.exportMode ?? 0o644);
    writeFileSync(join(gpioDir, 'unexport'), '');
    for (const [n, v] of Object.entries(opts.pins ?? {})) {
      const d = join(gpioDir, `gpio${n}`);
      mkdirSync(d);
      writeFileSync(join(d, 'direction'), 'out\n');
      writeFileSync(join(d, 'edge'), 'none\n');
      writeFileSync(join(d, 'active_low'), '1\n'); // stale setting: the driver must reset it
      writeFileSync(join(d, 'value'), `${v}\n`);
    }
  }
  const file = (gpio: number, name: string) => join(gpioDir, `gpio${gpio}`, name);
  return {
    classDir,
    gpioDir,
    file,
    rootFile: (name) => join(gpioDir, name),
    // Rewritten in place (same inode): the child holds the value file open, as on real sysfs.
    setValue: (gpio, v) => writeFileSync(file(gpio, 'value'), `${v}\n`),
    readSinceWritten: (gpio) => {
      const st = statSync(file(gpio, 'value'), { bigint: true });
      return st.atimeNs > st.mtimeNs;
    },
    cleanup: () => rmSync(classDir, { recursive: true, force: true }),
  };
}

export const readTrim = (path: string): string => readFileSync(path, 'utf8').trim();

/** Why the mount-namespace tests cannot run here, or null when they can. */
export function namespaceProblem(): string | null {
  if (process.platform !== 'linux') return `needs Linux mount namespaces (platform is ${process.platform})`;
  if (process.getuid?.() !== 0)
    return 'needs root to unshare a mount namespace and bind-mount over /sys/class';
  const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'true']);
  if (r.error) return `unshare(1) is not available: ${r.error.message} (install util-linux)`;
  if (r.status !== 0)
    return `unshare --mount failed (${r.stderr.toString().trim()}): the sandbox forbids mount namespaces`;
  return null;
}

export interface ChildEvent {
  type: string;
  [k: string]: unknown;
}

export interface GpioChild {
  readonly events: ChildEvent[];
  stderr(): string;
  waitFor(pred: (events: ChildEvent[]) => boolean, what: string, ms?: number): Promise<void>;
  stop(): Promise<number | null>;
  exit: Promise<number | null>;
  kill(): void;
}

const CHILD = fileURLToPath(new URL('./gpio-sysfs-child.js', import.meta.url));

export function startGpioChild(fs: FakeSysfs, args: Record<string, unknown>): GpioChild {
  const script = 'mount --bind "$0" /sys/class && exec "$@"';
  const proc: ChildProcess = spawn(
    'unshare',
    [
      '--mount',
      '--propagation',
      'private',
      'sh',
      '-c',
      script,
      fs.classDir,
      process.execPath,
      CHILD,
      JSON.stringify(args),
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  const events: ChildEvent[] = [];
  let err = '';
  let buf = '';
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.trim() !== '') events.push(JSON.parse(line) as ChildEvent);
    }
  });
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  let exited = false;
  void exit.then(() => (exited = true));

  const waitFor = async (pred: (e: ChildEvent[]) => boolean, what: string, ms = 5000): Promise<void> => {
    const deadline = Date.now() + ms;
    while (!pred(events)) {
      if (exited) throw new Error(`gpio child exited while waiting for ${what}; stderr: ${err}`);
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${what}; events: ${JSON.stringify(events)}; stderr: ${err}`);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  return {
    events,
    stderr: () => err,
    waitFor,
    exit,
    stop: async () => {
      proc.stdin!.end('stop\n');
      return exit;
    },
    kill: () => {
      if (!exited) proc.kill('SIGKILL');
    },
  };
}
