// RSS and CPU of the real daemon (`edgegw run`, its own process) with 20 Modbus TCP float32 sensors
// at 1 Hz, the Modbus simulator in this process and the TLS broker in a child of its own
// (broker-child.ts: a broker sharing this process's event loop and heap, which after section 5 is
// large, can answer a PUBACK late and make the daemon commit a record it would not have written).
// Figures come from the daemon's /proc/<pid> counters, so nothing this process does counts.
//   node dist/bench/daemon-footprint.js [--seconds=60] [--warmup=15] [--backlog=N] [--offline] [--flash]
//                                       [--node=--max-semi-space-size=1,--max-old-space-size=48]
//                                       [--env=MALLOC_ARENA_MAX=2]
// --node and --env default to the unit's (systemd/edgegw.service); --node= and --env= run without.
// --backlog=N fills the queue with N readings first (typical-site records, as section 5's fill),
// --offline points the uplink at a closed port (the backlog stays waiting); --flash puts the site on
// an ext4 loop device of its own and counts what reaches it (root only: loop-fs.ts).

import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDemoPki, writeDemoPki } from '../src/demo/pki.js';
import { BrokerProcess } from './broker.js';
import { startModbusSimulator } from '../src/demo/modbus-sim.js';
import { writeNewKeyFile } from '../src/seal/keyfile.js';
import { makeSensors, pollStream } from './readings.js';
import { startPipeline, IOT_CORE, sleep } from './pipeline.js';
import type { Reading } from '../src/types.js';
import { makeLoopFs, type LoopFs } from './loop-fs.js';

export interface DaemonFootprint {
  /** RSS samples (bytes), one a second after the warm-up. */
  rss: number[];
  rssMax: number;
  /** Process CPU (user + system) over the measured seconds, % of one core. */
  cpuPercent: number;
  seconds: number;
  /** From `edgegw status --json` at the end: readings read and delivered, sensor errors. */
  status: DaemonStatus;
  /** With `fs`: what reached its block device over the measured seconds. */
  flash?: {
    bytes: number;
    readings: number;
    delivered: number;
    written: number;
    commits: number;
    /** What LevelDB's write-ahead logs grew by (the bytes its commits appended). */
    logBytes: number;
  };
}

interface DaemonStatus {
  readings: number;
  delivered: number;
  /** Readings written to disk (status counters.written). */
  written: number;
  sensorErrors: number;
  queued: number;
  nextSeq: number;
}

/**
 * The node flags of systemd/edgegw.service's ExecStart and its MALLOC_* Environment= lines, read
 * from the unit itself: the daemon is measured as shipped, and the two cannot drift apart.
 */
export function unitMemorySettings(unit: string): { nodeArgs: string[]; env: Record<string, string> } {
  const exec = /^ExecStart=\S*node((?: --\S+)*) /m.exec(unit);
  if (exec === null) throw new Error('bench: no ExecStart=…node… line in the unit');
  const nodeArgs = exec[1]!
    .trim()
    .split(/\s+/)
    .filter((a) => a !== '');
  const env: Record<string, string> = {};
  for (const m of unit.matchAll(/^Environment=(MALLOC_[A-Z_]+)=(\S+)$/gm)) env[m[1]!] = m[2]!;
  return { nodeArgs, env };
}

const UNIT = unitMemorySettings(
  readFileSync(fileURLToPath(new URL('../../systemd/edgegw.service', import.meta.url)), 'utf8'),
);
export const UNIT_NODE_ARGS: readonly string[] = UNIT.nodeArgs;
export const UNIT_ENV: Readonly<Record<string, string>> = UNIT.env;

const BIN = fileURLToPath(new URL('../../bin/edgegw.js', import.meta.url));
const CLK_TCK = 100; // USER_HZ on Linux

function arg(name: string, dflt: string): string {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit === undefined ? dflt : hit.slice(name.length + 3);
}

function procCpuTicks(pid: number): number {
  // Fields after the command name (which may hold spaces): utime is the 12th, stime the 13th.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

function procRss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

/** The largest mappings by RSS (kB), to see where memory goes (FOOTPRINT_SMAPS=1). */
function dumpMaps(pid: number): void {
  const rows: { kb: number; what: string }[] = [];
  let what = '';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head !== null) what = head[1] ?? '';
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss !== null) rows.push({ kb: Number(rss[1]), what });
  }
  const by = new Map<string, number>();
  for (const r of rows) by.set(r.what || '[anon]', (by.get(r.what || '[anon]') ?? 0) + r.kb);
  const top = [...by].sort((a, b) => b[1] - a[1]).slice(0, 12);
  console.error(top.map(([w, kb]) => `${String(kb).padStart(7)} kB ${w}`).join('\n'));
  console.error(
    readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .filter((l) => /^Rss|^VmHWM/.test(l))
      .join('\n'),
  );
}

function statusOf(socket: string): DaemonStatus {
  const r = spawnSync(process.execPath, [BIN, 'status', '--json', '--socket', socket], { encoding: 'utf8' });
  if (process.env.FOOTPRINT_STATUS !== undefined) console.error(r.stdout);
  const s = JSON.parse(r.stdout) as {
    counters: { readings: number; delivered: number; written: number };
    queue: { readings: number; nextSeq: number };
    sensors: { errors: number }[];
  };
  return {
    readings: s.counters.readings,
    delivered: s.counters.delivered,
    written: s.counters.written,
    sensorErrors: s.sensors.reduce((a, x) => a + x.errors, 0),
    queued: s.queue.readings,
    nextSeq: s.queue.nextSeq,
  };
}

/** The size of LevelDB's write-ahead logs (`*.log`) in a dataDir. */
function logBytes(dataDir: string): number {
  let n = 0;
  for (const f of readdirSync(dataDir)) if (f.endsWith('.log')) n += statSync(join(dataDir, f)).size;
  return n;
}

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Fills a queue folder with `readings` (typical-site records), as a daemon offline for a while would. */
export async function fillQueue(dir: string, key: Uint8Array, readings: number): Promise<void> {
  const p = await startPipeline({
    key,
    dir,
    broker: null,
    limits: IOT_CORE,
    flushMs: 200,
    maxRecordReadings: 2000,
    durability: 'os',
  });
  const it = pollStream(makeSensors(20), Date.now() - readings * 50, 1000);
  let record: Reading[] = [];
  for (let done = 0; done < readings;) {
    const r = it.next().value as Reading;
    if (record.length > 0 && r.ts - record[0]!.ts >= 200) {
      await p.queue.append(record);
      done += record.length;
      record = [];
    }
    record.push(r);
  }
  await p.stop();
}

export async function measureDaemon(o: {
  seconds: number;
  warmupSeconds: number;
  /** A filled queue folder (moved in as the site's dataDir) and its key. */
  backlog?: { dir: string; key: Uint8Array };
  offline: boolean;
  nodeArgs: readonly string[];
  /** Extra environment of the daemon (e.g. MALLOC_ARENA_MAX). */
  env?: Record<string, string>;
  /** The site folder (dataDir with it) goes on this filesystem, and its device's writes are counted. */
  fs?: LoopFs;
}): Promise<DaemonFootprint> {
  const dir = await mkdtemp(join(o.fs?.mount ?? tmpdir(), 'edgegw-footprint-'));
  const pki = createDemoPki('fp-gw1');
  await mkdir(join(dir, 'pki'), { mode: 0o700 });
  await writeDemoPki(join(dir, 'pki'), pki);
  if (o.backlog === undefined) await writeNewKeyFile(join(dir, 'pki', 'queue.key'));
  else {
    await writeFile(join(dir, 'pki', 'queue.key'), o.backlog.key, { mode: 0o600 });
    await rename(o.backlog.dir, join(dir, 'data'));
  }
  const broker = new BrokerProcess();
  await broker.start(pki);
  const sim = await startModbusSimulator({ host: '127.0.0.1', port: 0, demo: false });
  // 20 float32 values (big-endian words, the Modbus default), each a random walk moved every second.
  const values = Array.from({ length: 20 }, (_, i) => 20 + i);
  const plant = (): void => {
    const b = Buffer.alloc(80);
    values.forEach((v, i) => {
      values[i] = v + (Math.random() - 0.5);
      b.writeFloatBE(values[i], i * 4);
    });
    sim.set(
      'holding',
      0,
      Array.from({ length: 40 }, (_, w) => b.readUInt16BE(w * 2)),
    );
  };
  plant();
  const planting = setInterval(plant, 1000);
  const sensors = Array.from(
    { length: 20 },
    (_, i) =>
      `  - { id: s-${String(i).padStart(2, '0')}, bus: plc, table: holding, address: ${2 * i}, type: float32, decimals: 1, every: 1s }`,
  ).join('\n');
  const url = o.offline ? `mqtts://localhost:${await closedPort()}` : broker.url;
  await writeFile(
    join(dir, 'site.yaml'),
    `gateway: { id: fp-gw1, dataDir: ./data }
uplink: { url: '${url}', ca: pki/ca.pem, cert: pki/client.pem, key: pki/client.key }
queue: { keyFile: pki/queue.key, durability: fsync, flush: 200ms }
buses:
  plc: { tcp: { host: 127.0.0.1, port: ${sim.port} } }
sensors:
${sensors}
status: { socket: ./status.sock }
log: { level: warn }
`,
  );
  const child = spawn(process.execPath, [...o.nodeArgs, BIN, 'run', '-c', join(dir, 'site.yaml')], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, ...o.env },
  });
  const pid = child.pid ?? 0;
  try {
    await sleep(o.warmupSeconds * 1000);
    // What the start wrote (LevelDB's files, the first records) is written back before the count.
    o.fs?.sync();
    const before =
      o.fs === undefined
        ? null
        : {
            bytes: o.fs.bytesWritten(),
            status: statusOf(join(dir, 'status.sock')),
            logBytes: logBytes(join(dir, 'data')),
          };
    const rss: number[] = [];
    const c0 = procCpuTicks(pid);
    const t0 = performance.now();
    for (let s = 0; s < o.seconds; s++) {
      await sleep(1000);
      rss.push(procRss(pid));
    }
    const ticks = procCpuTicks(pid) - c0;
    // FOOTPRINT_LS: the files written during the window (which part of the daemon wrote there).
    if (process.env.FOOTPRINT_LS !== undefined) {
      const since = `@${Math.floor(Date.now() / 1000 - o.seconds)}`;
      const args = [o.fs?.mount ?? dir, '-newermt', since, '-printf', '%TT %s %p\\n'];
      console.error(spawnSync('find', args, { encoding: 'utf8' }).stdout);
    }
    if (process.env.FOOTPRINT_SMAPS !== undefined) dumpMaps(pid);
    const status = statusOf(join(dir, 'status.sock'));
    const wall = (performance.now() - t0) / 1000;
    o.fs?.sync(); // what the window left dirty counts too
    const flash =
      o.fs === undefined || before === null
        ? undefined
        : {
            bytes: o.fs.bytesWritten() - before.bytes,
            readings: status.readings - before.status.readings,
            delivered: status.delivered - before.status.delivered,
            written: status.written - before.status.written,
            commits: status.nextSeq - before.status.nextSeq,
            logBytes: logBytes(join(dir, 'data')) - before.logBytes,
          };
    return {
      ...(flash === undefined ? {} : { flash }),
      rss,
      rssMax: Math.max(...rss),
      cpuPercent: (ticks / CLK_TCK / wall) * 100,
      seconds: wall,
      status,
    };
  } finally {
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    await exited;
    clearInterval(planting);
    await broker.close();
    await sim.close();
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const nodeArgs = arg('node', UNIT_NODE_ARGS.join(','));
  const readings = Number(arg('backlog', '0'));
  const fs = process.argv.includes('--flash')
    ? await makeLoopFs(await mkdtemp(join(tmpdir(), 'edgegw-flash-')), 512)
    : undefined;
  // Filled where the site will be (a rename cannot cross into the loop device's filesystem).
  let backlog: { dir: string; key: Uint8Array } | undefined;
  if (readings > 0) {
    backlog = { dir: await mkdtemp(join(fs?.mount ?? tmpdir(), 'edgegw-backlog-')), key: randomBytes(32) };
    await fillQueue(backlog.dir, backlog.key, readings);
  }
  const r = await measureDaemon({
    ...(fs === undefined ? {} : { fs }),
    seconds: Number(arg('seconds', '60')),
    warmupSeconds: Number(arg('warmup', '15')),
    ...(backlog === undefined ? {} : { backlog }),
    offline: process.argv.includes('--offline'),
    nodeArgs: nodeArgs === '' ? [] : nodeArgs.split(','),
    env: Object.fromEntries(
      arg(
        'env',
        Object.entries(UNIT_ENV)
          .map(([k, v]) => `${k}=${v}`)
          .join(','),
      )
        .split(',')
        .filter((kv) => kv.includes('='))
        .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    ),
  }).finally(() => fs?.close());
  const mib = (b: number): string => (b / 1024 ** 2).toFixed(1);
  const sorted = [...r.rss].sort((a, b) => a - b);
  console.log(
    JSON.stringify({
      rssMaxMiB: mib(r.rssMax),
      rssMedianMiB: mib(sorted[Math.floor(sorted.length / 2)] ?? 0),
      rssMiB: r.rss.map(mib).join(' '),
      cpuPercent: r.cpuPercent.toFixed(3),
      seconds: r.seconds.toFixed(1),
      ...r.status,
      ...(r.flash === undefined ? {} : { flash: r.flash }),
      nodeArgs,
      env: arg(
        'env',
        Object.entries(UNIT_ENV)
          .map(([k, v]) => `${k}=${v}`)
          .join(','),
      ),
    }),
  );
}
