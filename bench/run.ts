// `npm run bench`: every DESIGN.md §7 target, measured side by side in one run (the machine is
// shared and noisy, so the targets are ratios and figures taken together). Sizes come from the
// environment or argv (`BENCH_E2E_READINGS=100000` or `--e2e-readings=100000`); see OPTIONS.

import { execSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { createDemoPki } from '../src/demo/pki.js';
import { BrokerProcess } from './broker.js';
import { measureBytes } from './bytes.js';
import { runDrain } from './drain.js';
import { runEdgegwE2e } from './e2e.js';
import { measureFloors } from './floors.js';
import { measureDaemon, UNIT_ENV, UNIT_NODE_ARGS } from './daemon-footprint.js';
import { runFootprint } from './footprint.js';
import { fsyncFloor, loopFsUnavailable, makeLoopFs } from './loop-fs.js';
import { runPeer } from './peer.js';
import { fmt, Report, type Machine } from './report.js';
import { makeSensors, takeReadings } from './readings.js';
import { IOT_CORE, GATEWAY_ID } from './pipeline.js';

/** Readings generated for the peer (it takes them in turn; ~7,000/s were measured). */
const PEER_READINGS = 250_000;

/** Where the run's figures go (BENCHMARKS.md is rendered from it). */
const RESULT_FILE = process.env.BENCH_RESULT ?? 'bench/last-run.json';

const OPTIONS = {
  /** Readings pushed through the edgegw pipeline in section 1 (and measured in section 2). */
  E2E_READINGS: 1_000_000,
  /** How long the peer publishes in section 1. */
  PEER_SECONDS: 8,
  /** Minutes of the typical site (20 sensors at 1 Hz) per record size in section 3. */
  BYTES_MINUTES: 60,
  /** Seconds of drain at the byte quota to pre-fill in section 4. */
  DRAIN_BACKLOG_SECONDS: 15,
  /** Section 4 stops after this many seconds whatever happens. */
  DRAIN_MAX_SECONDS: 30,
  /** Readings waiting on disk while RSS is sampled in section 5. */
  BACKLOG_READINGS: 1_000_000,
  /** Seconds the daemon's steady RSS and idle CPU are measured in section 5 (CPU ticks are 10 ms). */
  IDLE_SECONDS: 30,
  /** Seconds each flash figure (online, offline) is counted over in section 6. */
  FLASH_SECONDS: 30,
  /** Which sections to run, e.g. "1,3". */
  SECTIONS: '1,2,3,4,5,6',
};
type Options = { -readonly [K in keyof typeof OPTIONS]: (typeof OPTIONS)[K] };

function parseOptions(): Options {
  const o: Options = { ...OPTIONS };
  const set = (name: string, raw: string): void => {
    if (!(name in o)) throw new Error(`bench: unknown option ${name} (known: ${Object.keys(o).join(', ')})`);
    const key = name as keyof Options;
    if (key === 'SECTIONS') o.SECTIONS = raw;
    else {
      const n = Number(raw);
      if (!(n > 0)) throw new Error(`bench: ${name} must be a positive number`);
      o[key] = n;
    }
  };
  for (const key of Object.keys(o)) {
    const v = process.env[`BENCH_${key}`];
    if (v !== undefined) set(key, v);
  }
  for (const arg of process.argv.slice(2)) {
    const m = /^--([a-z0-9-]+)=(.*)$/.exec(arg);
    if (m === null) throw new Error(`bench: arguments look like --e2e-readings=100000, not ${arg}`);
    set(m[1]!.toUpperCase().replaceAll('-', '_'), m[2]!);
  }
  return o;
}

function machine(): Machine {
  let disk = '';
  try {
    disk = execSync(`df -h --output=source,fstype ${tmpdir()} | tail -1`, { encoding: 'utf8' }).trim();
  } catch {
    disk = 'unknown';
  }
  return {
    date: new Date().toISOString(),
    cpu: `${cpus()[0]?.model ?? 'unknown'} × ${availableParallelism()} (nproc)`,
    memory: `${Math.round(totalmem() / 1024 ** 3)} GiB`,
    node: process.version,
    disk,
  };
}

/** Section 1's edgegw runs (each on the same readings, after the warm-up). */
const E2E_RUNS = 5;

async function main(): Promise<void> {
  const o = parseOptions();
  const sections = new Set(o.SECTIONS.split(',').map((s) => s.trim()));
  const report = new Report();
  const work = await mkdtemp(join(tmpdir(), 'edgegw-bench-'));
  const broker = new BrokerProcess();
  const log = (s: string): void => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${s}`);
  const host = machine();
  const startedAt = Date.now();
  console.log(
    Object.entries(host)
      .map(([k, v]) => `${k}: ${v}`)
      .join('\n'),
  );
  console.log(`options: ${JSON.stringify(o)}\n`);
  try {
    log('creating the demo PKI and starting the TLS broker (own process)');
    const pki = createDemoPki(GATEWAY_ID);
    await broker.start(pki);

    if (sections.has('1') || sections.has('2')) {
      const sensors = makeSensors(20);
      const readings = takeReadings(sensors, Date.now(), 100, o.E2E_READINGS);
      // Warm-up (JIT, TLS session, LevelDB) on other readings: the daemon runs for weeks.
      log(`1: warm-up, ${fmt.int(readings.length / 10)} readings`);
      await runEdgegwE2e({
        dir: join(work, 'warm-up'),
        pki,
        url: broker.url,
        readings: takeReadings(makeSensors(20), Date.now(), 100, Math.ceil(readings.length / 10)),
        maxRecordReadings: 2000,
      });
      // Five runs on the same readings: section 1 takes the median run's rate (the peer's is one
      // long run's average), section 2 the least CPU (its floors are each the least of five).
      const runs = [];
      for (let i = 0; i < E2E_RUNS; i++) {
        log(`1: edgegw end to end, ${fmt.int(readings.length)} readings (run ${i + 1} of ${E2E_RUNS})`);
        runs.push(
          await runEdgegwE2e({
            dir: join(work, `e2e-${i}`),
            pki,
            url: broker.url,
            readings,
            maxRecordReadings: 2000,
          }),
        );
      }
      const byRate = [...runs].sort((a, b) => a.readings / a.elapsedMs - b.readings / b.elapsedMs);
      const e = byRate[Math.floor(byRate.length / 2)]!;
      const edgeRate = (e.readings / e.elapsedMs) * 1000;
      const cpuPer = Math.min(...runs.map((r) => r.cpuUs / r.readings));

      log('2: stage floors on the same records');
      const { Sealer } = await import('../src/seal/sealer.js');
      const sealer = await Sealer.create(new Uint8Array(32).fill(7));
      const f = await measureFloors({
        records: e.records,
        sealer,
        dir: join(work, 'floor-level'),
        url: broker.url,
        pki,
      });

      log(`1: the peer (mqtt.js + LevelDB store, one QoS 1 message per reading), ${o.PEER_SECONDS} s`);
      const peer = await runPeer({
        dir: join(work, 'peer'),
        url: broker.url,
        pki,
        // Generated before its clock starts, as edgegw's are; more than it publishes in the run.
        readings: takeReadings(makeSensors(20), Date.now(), 100, PEER_READINGS),
        // Like edgegw's warm-up (a tenth of the measured run), at least a second.
        warmupMs: Math.max(1000, o.PEER_SECONDS * 100),
        durationMs: o.PEER_SECONDS * 1000,
        inflight: 100,
      });
      const peerRate = (peer.delivered / peer.elapsedMs) * 1000;

      if (sections.has('1')) {
        const s = '1 end to end';
        report.info(
          s,
          `edgegw readings/s (sensor→PUBACK), median of ${E2E_RUNS} runs`,
          `${fmt.int(edgeRate)} (${fmt.int(e.readings)} in ${fmt.ms(e.elapsedMs)})`,
        );
        report.info(
          s,
          'peer readings/s (sensor→PUBACK)',
          `${fmt.int(peerRate)} (${fmt.int(peer.delivered)} in ${fmt.ms(peer.elapsedMs)})`,
        );
        report.info(s, 'peer CPU per reading', fmt.us(peer.cpuUs / peer.delivered));
        report.check(
          s,
          'edgegw ÷ peer',
          `${fmt.num(edgeRate / peerRate)}×`,
          '≥ 100×',
          edgeRate / peerRate >= 100,
        );
      }
      if (sections.has('2')) {
        const s = '2 CPU/reading';
        const n = e.readings;
        const sum = f.encodeUs + f.sealUs + f.levelUs + f.wireUs + f.publishUs;
        report.info(s, `pipeline (process CPU ÷ readings), least of ${E2E_RUNS} runs`, fmt.us(cpuPer));
        report.info(s, 'floor: encodeReadings', fmt.us(f.encodeUs / n));
        report.info(s, 'floor: seal (AEAD only)', fmt.us(f.sealUs / n));
        report.info(s, 'floor: one LevelDB chained batch (sync)', fmt.us(f.levelUs / n));
        report.info(
          s,
          "floor: wire JSON (JSON.stringify of each message's object form)",
          fmt.us(f.wireUs / n),
        );
        report.info(s, 'floor: mqtt.js publish of the wire bytes', fmt.us(f.publishUs / n));
        report.info(s, 'sum of floors', fmt.us(sum / n));
        report.info(s, '(not a floor) open: decrypt + decode', fmt.us(f.openUs / n));
        report.info(s, '(not a floor) JSON packing', fmt.us(f.packUs / n));
        report.info(s, '(not a floor) compression: deflate adds to packing', fmt.us(f.deflateUs / n));
        report.check(
          s,
          'pipeline ÷ sum of floors',
          `${fmt.num(cpuPer / (sum / n), 2)}×`,
          '≤ 2×',
          cpuPer / (sum / n) <= 2,
        );
      }
    }

    let wirePerReading = 17;
    let deflatePerReading = 4.5;
    if (sections.has('3')) {
      const s = '3 bytes/reading';
      const runs: { flushMs: number; phases: 'spread' | 'aligned' }[] = [
        { flushMs: 200, phases: 'spread' },
        { flushMs: 200, phases: 'aligned' },
        { flushMs: 1000, phases: 'spread' },
        { flushMs: 5000, phases: 'spread' },
      ];
      for (const { flushMs, phases } of runs) {
        log(
          `3: bytes per reading, ${flushMs} ms records, ${phases} phases, ${o.BYTES_MINUTES} min of 20 sensors at 1 Hz`,
        );
        const b = await measureBytes(
          join(work, `bytes-${flushMs}-${phases}`),
          flushMs,
          o.BYTES_MINUTES,
          phases,
        );
        const what = `${flushMs < 1000 ? `${flushMs} ms` : `${flushMs / 1000} s`} records, ${phases} (${fmt.num(b.readings / b.records)}/rec)`;
        const disk = b.diskBytesPerReading;
        const wire = b.wireBytesPerReading;
        const deflated = b.deflateBytesPerReading;
        const dWhat = `wire deflate, ${what}, ${b.deflateFullMessages} full msgs`;
        if (flushMs === 200 && phases === 'spread') {
          deflatePerReading = deflated;
          report.check(s, dWhat, `${fmt.num(deflated, 2)} B`, '≤ 4.5 B', deflated <= 4.5);
          report.info(
            s,
            `deflate CPU added to packing, ${what} (${fmt.num(b.compressionsPerMessage, 2)} compressions/msg)`,
            fmt.us(b.deflateUsPerReading),
          );
        } else {
          report.info(s, dWhat, `${fmt.num(deflated, 2)} B`);
        }
        if (flushMs === 200) {
          // The daemon's sensors started together poll on one grid: its live messages are "aligned".
          const live = `live, one record per message, ${what}`;
          if (phases === 'aligned') {
            report.check(
              s,
              live,
              `${fmt.num(b.liveBytesPerReading, 2)} B`,
              '≤ 15 B',
              b.liveBytesPerReading <= 15,
            );
          } else report.info(s, live, `${fmt.num(b.liveBytesPerReading, 2)} B`);
          // Plain JSON cannot reach it live (DESIGN.md §3: each message names its sensors); with
          // `compression: deflate` the same messages can.
          const liveDeflate = `live deflate, one record per message, ${what}`;
          const liveDeflated = `${fmt.num(b.liveDeflateBytesPerReading, 2)} B`;
          if (phases === 'aligned') {
            report.check(s, liveDeflate, liveDeflated, '≤ 15 B', b.liveDeflateBytesPerReading <= 15);
          } else report.info(s, liveDeflate, liveDeflated);
          if (phases === 'spread') wirePerReading = wire;
          report.check(s, `disk, ${what}`, `${fmt.num(disk, 2)} B`, '≤ 12 B', disk <= 12);
          report.check(
            s,
            `wire, ${what}, ${b.fullMessages} full msgs`,
            `${fmt.num(wire, 2)} B`,
            '≤ 16 B',
            wire <= 16,
          );
        } else {
          report.info(s, `disk, ${what}`, `${fmt.num(disk, 2)} B`);
          report.info(s, `wire, ${what}, ${b.fullMessages} full msgs`, `${fmt.num(wire, 2)} B`);
        }
      }
    }

    if (sections.has('4')) {
      const rates = new Map<string, number>();
      for (const [compression, perReading] of [
        ['none', wirePerReading],
        ['deflate', deflatePerReading],
      ] as const) {
        const s = `4 drain @ quotas, ${compression}`;
        const backlogReadings = Math.round((o.DRAIN_BACKLOG_SECONDS * IOT_CORE.bytesPerSecond) / perReading);
        log(
          `4: drain ${fmt.int(backlogReadings)} backlog readings under IoT Core quotas (compression ${compression}), live 20 sensors at 10 Hz`,
        );
        const d = await runDrain({
          dir: join(work, `drain-${compression}`),
          compression,
          pki,
          backlogReadings,
          maxSeconds: o.DRAIN_MAX_SECONDS,
        });
        rates.set(compression, d.backlogReadingsPerSecond);
        report.info(s, 'backlog readings/s while draining', fmt.int(d.backlogReadingsPerSecond));
        report.info(
          s,
          'backlog',
          `${fmt.int(d.backlogReadings)} readings in ${fmt.int(d.backlogRecords)} records`,
        );
        report.info(
          s,
          'drain time',
          d.drainMs === null ? `not drained in ${o.DRAIN_MAX_SECONDS} s` : fmt.ms(d.drainMs),
        );
        report.check(
          s,
          'byte quota used while draining',
          fmt.pct(d.byteQuotaUsed),
          '≥ 95%',
          d.byteQuotaUsed >= 0.95,
        );
        report.check(
          s,
          'max publishes in any 1 s',
          String(d.maxPublishesPerSecond),
          '≤ 100',
          d.maxPublishesPerSecond <= 100,
        );
        report.check(
          s,
          'max bytes in any 1 s (PUBLISH frames)',
          `${fmt.int(d.maxBytesPerSecond)} B`,
          `≤ ${fmt.int(IOT_CORE.bytesPerSecond)} B`,
          d.maxBytesPerSecond <= IOT_CORE.bytesPerSecond,
        );
        const rules = d.brokerRules;
        report.check(
          s,
          "publishes the broker's IoT Core rules discarded",
          fmt.int(rules.discarded),
          '0',
          rules.discarded === 0 && rules.refusedPayload + rules.refusedTopic + rules.refusedConnects === 0,
        );
        report.info(
          s,
          'broker reads held back by the byte rate / the in-flight limit',
          `${fmt.int(rules.delayedBytes)} (${fmt.ms(rules.delayedBytesMs)}) / ${fmt.int(rules.delayedInflight)}`,
        );
        report.info(
          s,
          'live readings (p50 / max latency)',
          `${fmt.int(d.liveReadings)}, ${fmt.int(d.liveUndelivered)} undelivered; ${fmt.ms(d.p50Ms)} / ${fmt.ms(d.maxMs)}`,
        );
        report.check(s, 'live p99 sensor→PUBACK during drain', fmt.ms(d.p99Ms), '< 2,000 ms', d.p99Ms < 2000);
      }
      const gain = (rates.get('deflate') ?? NaN) / (rates.get('none') ?? NaN);
      report.check(
        '4 drain @ quotas',
        'backlog readings/s, deflate ÷ none',
        `${fmt.num(gain, 2)}×`,
        '≥ 3.5×',
        gain >= 3.5,
      );
    }

    if (sections.has('5')) {
      const s = '5 footprint';
      log(`5: RSS with ${fmt.int(o.BACKLOG_READINGS)} readings waiting (fresh process)`);
      const dir = join(work, 'backlog');
      const keyHex = randomBytes(32).toString('hex');
      const f = await runFootprint({ mode: 'fill', dir, keyHex, readings: o.BACKLOG_READINGS });
      const fillMax = Math.max(...f.rss);
      const growth = fillMax - (f.rss[0] ?? 0);
      report.info(
        s,
        'backlog',
        `${fmt.int(f.readings)} readings, ${fmt.int(f.records)} records (filled in ${fmt.num(f.seconds)} s)`,
      );
      // The bench's own process, not the daemon: what matters is that it stays flat (next row).
      report.info(s, 'stages in one process: max RSS while the backlog grew', fmt.mib(fillMax));
      report.check(
        s,
        'RSS growth, 10% → 100% of the backlog',
        fmt.mib(growth),
        'flat (≤ 10 MiB)',
        growth <= 10 * 1024 * 1024,
      );
      // A daemon run takes its backlog folder over: the offline run gets `dir`, the online one
      // (which drains it) a copy, on an ext4 loop device of its own when there can be one, so
      // what the drain writes (LevelDB's tombstones and compactions) is counted at the device.
      const drainFs = loopFsUnavailable() === null ? await makeLoopFs(join(work, 'drain-flash'), 256) : null;
      const drainDir = join(drainFs?.mount ?? work, 'backlog-drain');
      await cp(dir, drainDir, { recursive: true });
      log(`5: the daemon (edgegw run, own process) restarted with that backlog, uplink offline, 5 s`);
      const restarted = await measureDaemon({
        seconds: 5,
        warmupSeconds: 10,
        backlog: { dir, key: Buffer.from(keyHex, 'hex') },
        offline: true,
        nodeArgs: UNIT_NODE_ARGS,
        env: UNIT_ENV,
      });
      report.check(
        s,
        `edgegw run: max RSS restarted with ${fmt.int(restarted.status.queued)} readings waiting`,
        fmt.mib(restarted.rssMax),
        '≤ 80 MiB',
        restarted.rssMax <= 80 * 1024 * 1024,
      );
      log(`5: the daemon restarted with that backlog, broker up (draining it at the shipped quotas), 20 s`);
      const draining = await measureDaemon({
        seconds: 20,
        warmupSeconds: 5,
        backlog: { dir: drainDir, key: Buffer.from(keyHex, 'hex') },
        offline: false,
        nodeArgs: UNIT_NODE_ARGS,
        env: UNIT_ENV,
        ...(drainFs === null ? {} : { fs: drainFs }),
      }).finally(() => drainFs?.close());
      report.check(
        s,
        `edgegw run: max RSS restarted with the backlog, broker up (${fmt.int(draining.status.delivered)} readings drained)`,
        fmt.mib(draining.rssMax),
        '≤ 80 MiB',
        draining.rssMax <= 80 * 1024 * 1024,
      );
      const drained = draining.flash;
      if (drained === undefined)
        report.info(s, 'edgegw run: bytes at the device while draining', 'not measured (needs root)');
      else {
        report.info(
          s,
          `edgegw run: bytes at the device per reading drained (${fmt.num(drained.bytes / 1e6, 1)} MB in ${fmt.num(draining.seconds)} s, ext4 loop device)`,
          `${fmt.num(drained.bytes / drained.delivered, 1)} B`,
        );
      }
      log(
        `5: the daemon, 20 Modbus TCP sensors at 1 Hz to the broker, ${o.IDLE_SECONDS} s after a 20 s warm-up`,
      );
      const steady = await measureDaemon({
        seconds: o.IDLE_SECONDS,
        warmupSeconds: 20,
        offline: false,
        nodeArgs: UNIT_NODE_ARGS,
        env: UNIT_ENV,
      });
      report.check(
        s,
        'edgegw run: max RSS, 20 sensors at 1 Hz, steady',
        fmt.mib(steady.rssMax),
        '≤ 64 MiB',
        steady.rssMax <= 64 * 1024 * 1024,
      );
      report.check(
        s,
        `edgegw run: idle CPU (${fmt.int(steady.status.delivered)} readings delivered, ${steady.status.sensorErrors} sensor errors)`,
        `${fmt.num(steady.cpuPercent, 2)}% of a core`,
        '≤ 0.5%',
        steady.cpuPercent <= 0.5,
      );
    }

    if (sections.has('6')) {
      const s = '6 flash';
      const unavailable = loopFsUnavailable();
      if (unavailable !== null) report.info(s, 'not measured', unavailable);
      else {
        // Online, offline, and offline again on ext4 with fast commits (a mkfs or tune2fs option).
        const runs = [
          { how: 'online', offline: false, fastCommit: false },
          { how: 'offline', offline: true, fastCommit: false },
          { how: 'offline, fast_commit', offline: true, fastCommit: true },
        ];
        for (const { how, offline, fastCommit } of runs) {
          log(
            `6: the daemon on an ext4 loop device of its own (4 KiB blocks), ${how}, ${o.FLASH_SECONDS} s after a 20 s warm-up`,
          );
          const fs = await makeLoopFs(join(work, `flash-${how.replace(/\W+/g, '-')}`), 256, { fastCommit });
          try {
            const d = await measureDaemon({
              seconds: o.FLASH_SECONDS,
              warmupSeconds: 20,
              offline,
              nodeArgs: UNIT_NODE_ARGS,
              env: UNIT_ENV,
              fs,
            });
            const f = d.flash!;
            const perReading = f.bytes / f.readings;
            const perDay = perReading * 20 * 86_400;
            const what = `${fmt.int(f.readings)} readings, ${fmt.int(f.commits)} commits in ${fmt.num(d.seconds)} s`;
            if (!offline) {
              report.check(
                s,
                `online: bytes at the device per reading (${what}, ${fmt.int(f.delivered)} delivered, ${fmt.int(f.written)} committed: PUBACK past the deadline)`,
                `${fmt.num(perReading, 1)} B`,
                '≤ 20 B',
                perReading <= 20,
              );
            } else {
              const perCommit = f.bytes / f.commits;
              const line = `${how}: bytes at the device per commit (${what})`;
              if (fastCommit) report.info(s, line, `${fmt.int(perCommit)} B`);
              else {
                report.check(s, line, `${fmt.int(perCommit)} B`, '≤ 768 B (1.5 × 512)', perCommit <= 768);
              }
              report.info(s, `${how}: bytes at the device per reading`, `${fmt.num(perReading, 1)} B`);
              // The least a commit can cost here: the same appends and fdatasyncs without LevelDB.
              if (f.logBytes > 0 && f.commits > 0) {
                const appended = f.logBytes / f.commits;
                const floor = await fsyncFloor(fs, {
                  commits: f.commits,
                  bytes: appended,
                  intervalMs: (d.seconds * 1000) / f.commits,
                });
                report.info(
                  s,
                  `${how}: the filesystem's floor per commit (${fmt.int(f.commits)} appends of ${fmt.int(appended)} B, each with fdatasync, no LevelDB)`,
                  `${fmt.int(floor)} B`,
                );
                report.info(s, `${how}: bytes per commit ÷ the floor`, `${fmt.num(perCommit / floor, 2)}×`);
              }
            }
            report.info(s, `${how}: a day of 20 sensors at 1 Hz writes`, `${fmt.num(perDay / 1e6, 1)} MB`);
          } finally {
            await fs.close();
          }
        }
      }
    }
  } finally {
    await broker.close();
    await rm(work, { recursive: true, force: true });
  }
  console.log(report.render());
  // The figures BENCHMARKS.md is generated from (`node dist/bench/render.js`), so text and table agree.
  const command = `node dist/bench/run.js ${process.argv.slice(2).join(' ')}`.trim();
  const json = { machine: host, command, options: o, wallMs: Date.now() - startedAt, rows: report.rows };
  await writeFile(RESULT_FILE, `${JSON.stringify(json, null, 2)}\n`);
  console.error(`[bench] figures written to ${RESULT_FILE}`);
  const failed = report.rows.filter((r) => r.verdict === 'FAIL').length;
  console.log(`\n${failed === 0 ? 'all targets met' : `${failed} target(s) not met`}`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
