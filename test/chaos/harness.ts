// The chaos suite's real parts: a site on disk (PKI, queue key, site.yaml, optionally a tmpfs
// dataDir), the broker as its own process (broker-process.ts), and the daemon as
// `node bin/edgegw.js run -c site.yaml`, whose stdout (pino JSON lines) is appended to one log
// file by the child itself, so nothing it logged is lost when it is SIGKILLed.

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, existsSync } from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDemoPki, writeDemoPki } from '../../src/demo/pki.js';
import { writeNewKeyFile } from '../../src/seal/keyfile.js';
import { queryStatus } from '../../src/status/server.js';
import { BIN, runCli, type CliResult } from '../helpers/cli.js';
import { waitFor } from '../helpers/site.js';
import { freePort } from '../helpers/ports.js';

export { freePort };
import { ChaosProxy } from './proxy.js';

const BROKER_SCRIPT = fileURLToPath(new URL('./broker-process.js', import.meta.url));

/** A uniformly random integer in [min, max]. */
export function rand(min: number, max: number): number {
  return min + Math.floor(Math.random() * (max - min + 1));
}

export class BrokerProcess {
  private child: ChildProcess | null = null;
  private out = '';
  private exited: Promise<void> = Promise.resolve();
  starts = 0;

  constructor(
    readonly pkiDir: string,
    readonly port: number,
    readonly ledger: string,
  ) {}

  get running(): boolean {
    return this.child !== null;
  }

  async start(): Promise<void> {
    if (this.child !== null) return;
    const child = spawn(process.execPath, [BROKER_SCRIPT, this.pkiDir, String(this.port), this.ledger], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.child = child;
    this.starts++;
    this.out = '';
    child.stdout.on('data', (d: Buffer) => (this.out += d.toString()));
    this.exited = new Promise((resolve) => child.on('exit', () => resolve()));
    void this.exited.then(() => {
      if (this.child === child) this.child = null;
    });
    await waitFor(
      () => this.out.includes('ready ') || this.child !== child,
      15_000,
      'the broker process to listen',
    );
    if (this.child !== child) throw new Error(`broker process exited before listening on ${this.port}`);
  }

  /** Sends a control line (pause | resume | drop | every N | cut) and waits for its answer. */
  async control(line: string): Promise<void> {
    const child = this.child;
    if (child === null) throw new Error(`broker not running for "${line}"`);
    const before = this.out.length;
    child.stdin!.write(`${line}\n`);
    await waitFor(
      () => this.out.slice(before).includes(` ${line}\n`),
      5000,
      `the broker to answer "${line}"`,
    );
    if (this.out.slice(before).includes(`err ${line}`)) throw new Error(`broker refused "${line}"`);
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (child === null) return;
    child.kill(signal);
    await this.exited;
    this.child = null;
  }

  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }
}

export interface DaemonExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

export class DaemonProcess {
  private child: ChildProcess | null = null;
  private exitP: Promise<DaemonExit> | null = null;
  /** SIGKILLs sent while the daemon was running (each allows one window of duplicates). */
  kills = 0;
  starts = 0;

  constructor(
    readonly configFile: string,
    readonly logFile: string,
    readonly statusSocket: string,
    readonly env: NodeJS.ProcessEnv = {},
  ) {}

  get running(): boolean {
    return this.child !== null;
  }

  /**
   * Starts `edgegw run`; waits until it logged "edgegw started". If it exits first, returns its
   * exit when `mayFail`, else throws with its stderr.
   */
  async start(opts: { wait?: boolean; mayFail?: boolean } = {}): Promise<DaemonExit | null> {
    if (this.child !== null) throw new Error('daemon already running');
    const before = this.logText().length;
    const fd = openSync(this.logFile, 'a');
    const child = spawn(process.execPath, [BIN, 'run', '-c', this.configFile], {
      env: { ...process.env, NOTIFY_SOCKET: '', ...this.env },
      stdio: ['ignore', fd, 'pipe'],
    });
    closeSync(fd);
    this.starts++;
    this.child = child;
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    this.exitP = new Promise((resolve) =>
      child.on('close', (code, signal) => {
        if (this.child === child) this.child = null;
        resolve({ code, signal, stderr });
      }),
    );
    if (opts.wait === false) return null;
    await waitFor(
      () => this.child !== child || this.logText().slice(before).includes('"msg":"edgegw started"'),
      20_000,
      'the daemon to start',
    );
    if (this.child === child) return null;
    const exit = await this.exitP;
    if (opts.mayFail === true) return exit;
    throw new Error(`daemon exited ${String(exit.code ?? exit.signal)} at start: ${exit.stderr.trim()}`);
  }

  /** The exit of a daemon that is expected to stop on its own. */
  async exited(ms = 20_000): Promise<DaemonExit> {
    const p = this.exitP;
    if (p === null) throw new Error('daemon never started');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`daemon did not exit within ${ms} ms`)), ms);
    });
    try {
      return await Promise.race([p, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async kill9(): Promise<void> {
    const child = this.child;
    if (child === null) return;
    this.kills++;
    child.kill('SIGKILL');
    await this.exited();
  }

  /** SIGTERM and the clean stop (DESIGN.md §2.7); its exit. */
  async stop(ms = 20_000): Promise<DaemonExit> {
    const child = this.child;
    if (child === null) throw new Error('daemon not running at the clean stop');
    child.kill('SIGTERM');
    return this.exited(ms);
  }

  /** Last resort at cleanup: never leave a daemon behind. */
  async reap(): Promise<void> {
    if (this.child !== null) await this.kill9().catch(() => undefined);
  }

  signal(sig: NodeJS.Signals): void {
    this.child?.kill(sig);
  }

  logText(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
  }

  /** The daemon's status over its socket (what `edgegw status --json` prints), or null if none answers. */
  async status(): Promise<StatusDoc | null> {
    if (this.child === null) return null;
    try {
      return (await queryStatus(this.statusSocket, 2000)) as unknown as StatusDoc;
    } catch {
      return null;
    }
  }
}

export interface StatusDoc {
  uplink: { state: string; inflight: number; lastError: string | null };
  queue: { records: number; readings: number; nextSeq: number };
  counters: Record<string, number>;
  sensors: { id: string; value: unknown; quality: string; ts: number; errors: number }[];
}

export interface SiteSpec {
  /** YAML lines for `sensors:` (indented by two spaces). */
  sensors?: string;
  buses?: string;
  queue?: string;
  uplink?: string;
  flush?: string;
  /** Put the daemon behind a ChaosProxy. */
  proxy?: boolean;
  /** Mount a tmpfs of this size (e.g. '4m') as dataDir; unmounted at cleanup. */
  tmpfs?: string;
  /** Environment for the daemon (e.g. libfaketime). */
  env?: NodeJS.ProcessEnv;
}

export const COUNTER_SENSORS = `  - { id: counter-1, sim: { wave: counter }, every: 20ms }
  - { id: wave-2, sim: { wave: sine, min: 0, max: 100, period: 10s }, every: 50ms }`;

/** One scenario run's site: files, broker, optional proxy, daemon. */
export class ChaosSite {
  readonly broker: BrokerProcess;
  readonly daemon: DaemonProcess;
  proxy: ChaosProxy | null = null;
  private mounted = false;
  /** The tmpfs mount point (dataDir is `disk/data` inside it), or null without tmpfs. */
  disk: string | null = null;
  /**
   * Seqs a scenario's own damage destroyed, or that a repair skipped as never used: the invariant
   * counts them as explained (the scenario proved which they are).
   */
  readonly explained: { from: number; to: number; reason: string }[] = [];
  /** A repair rebuilt the queue's figures: its lifetime totals restart from what was kept. */
  repaired = false;

  private constructor(
    readonly dir: string,
    readonly dataDir: string,
    readonly configFile: string,
    readonly ledger: string,
    readonly inflight: number,
    brokerPort: number,
    env: NodeJS.ProcessEnv,
  ) {
    this.broker = new BrokerProcess(join(dir, 'pki'), brokerPort, ledger);
    this.daemon = new DaemonProcess(configFile, join(dir, 'daemon.log'), join(dir, 'status.sock'), env);
  }

  static async create(spec: SiteSpec = {}): Promise<ChaosSite> {
    const dir = await mkdtemp(join(tmpdir(), 'edgegw-chaos-'));
    const pki = createDemoPki('chaos-gw1');
    await mkdir(join(dir, 'pki'), { mode: 0o700 });
    await writeDemoPki(join(dir, 'pki'), pki);
    await writeNewKeyFile(join(dir, 'pki', 'queue.key'));
    const brokerPort = await freePort();
    const dataDir = spec.tmpfs === undefined ? join(dir, 'data') : join(dir, 'disk', 'data');
    const inflight = Number(/inflight:\s*(\d+)/.exec(spec.uplink ?? '')?.[1] ?? 16);
    const site = new ChaosSite(
      dir,
      dataDir,
      join(dir, 'site.yaml'),
      join(dir, 'ledger.txt'),
      inflight,
      brokerPort,
      spec.env ?? {},
    );
    await writeFile(site.ledger, '');
    let uplinkPort = brokerPort;
    if (spec.proxy === true) {
      site.proxy = new ChaosProxy({ host: '127.0.0.1', port: brokerPort });
      await site.proxy.start();
      uplinkPort = site.proxy.port;
    }
    if (spec.tmpfs !== undefined) {
      site.disk = join(dir, 'disk');
      await mkdir(site.disk, { mode: 0o700 });
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${spec.tmpfs},mode=0700`, 'tmpfs', site.disk]);
      site.mounted = true;
    }
    const yaml = `gateway:
  id: chaos-gw1
  dataDir: ${spec.tmpfs === undefined ? './data' : './disk/data'}
uplink:
  url: mqtts://localhost:${uplinkPort}
  ca: pki/ca.pem
  cert: pki/client.pem
  key: pki/client.key
  backoff: { min: 100ms, max: 1s }
${spec.uplink ?? ''}
queue:
  keyFile: pki/queue.key
  durability: fsync
  flush: ${spec.flush ?? '100ms'}
${spec.queue ?? ''}
buses:${spec.buses === undefined ? ' {}' : `\n${spec.buses}`}
sensors:
${spec.sensors ?? COUNTER_SENSORS}
status:
  socket: ./status.sock
log: { level: info }
`;
    await writeFile(site.configFile, yaml);
    return site;
  }

  /** `edgegw queue <verb> --json` (the daemon must be stopped: LevelDB takes one process). */
  queueCli(verb: string, extra: string[] = []): Promise<CliResult> {
    // inspect and verify answer in JSON; repair prints what it did as text.
    const json = verb === 'repair' ? [] : ['--json'];
    return runCli(['queue', verb, ...json, '-c', this.configFile, ...extra]);
  }

  async cleanup(): Promise<void> {
    await this.daemon.reap();
    await this.broker.kill();
    await this.proxy?.stop();
    if (this.mounted) {
      execFileSync('umount', ['-l', this.disk!]);
      this.mounted = false;
    }
    if (process.env.CHAOS_KEEP === undefined) await rm(this.dir, { recursive: true, force: true });
  }
}
