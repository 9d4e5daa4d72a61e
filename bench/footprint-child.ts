// Section 5, in a fresh process so nothing the other sections allocated counts:
//   fill     fills a queue with N readings (typical site records: 20 sensors at 1 Hz, 200 ms),
//            sampling RSS as the backlog grows (a daemon running through an outage)
//   reopen   opens that queue (a daemon restarted during the outage) and runs live sensors with
//            the uplink offline, sampling RSS
//   idle     20 sensors at 1 Hz (one timer each, phases spread) through the whole pipeline to the
//            broker, fsync on; process CPU over the measured seconds.
// The parent sends one request over IPC and gets one result back.

import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { DemoPki } from '../src/demo/pki.js';
import type { Reading } from '../src/types.js';
import { makeSensors, nextValue, pollStream } from './readings.js';
import { IOT_CORE, sleep, startPipeline } from './pipeline.js';

export type FootprintRequest =
  | { mode: 'fill'; dir: string; keyHex: string; readings: number }
  | { mode: 'reopen'; dir: string; keyHex: string; seconds: number; pki: DemoPki }
  | { mode: 'idle'; dir: string; url: string; pki: DemoPki; seconds: number };

export type FootprintReply =
  | {
      mode: 'fill';
      records: number;
      readings: number;
      seconds: number;
      /** RSS (bytes) after each tenth of the fill. */
      rss: number[];
    }
  | {
      mode: 'reopen';
      readings: number;
      /** RSS samples (bytes) while the backlog waited with the uplink offline and sensors running. */
      rss: number[];
      heapUsed: number;
    }
  | { mode: 'idle'; cpuPercent: number; readings: number; seconds: number };

const IDLE_WARMUP_MS = 15_000;

const mb = (): number => process.memoryUsage.rss();

/** A port where nothing listens: the uplink stays offline and backs off. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** 20 sensors at 1 Hz, each on its own timer; returns a stop function. */
function runSensors(add: (r: Reading) => void, counter: { n: number }): () => void {
  const s = makeSensors(20);
  const timers: NodeJS.Timeout[] = [];
  s.ids.forEach((id, i) => {
    timers.push(
      setTimeout(() => {
        const tick = (): void => {
          add({ sensor: id, ts: Date.now(), value: nextValue(s, i), quality: 'good' });
          counter.n++;
        };
        tick();
        timers.push(setInterval(tick, 1000));
      }, i * 50),
    );
  });
  return () => timers.forEach((t) => clearTimeout(t));
}

async function fill(req: Extract<FootprintRequest, { mode: 'fill' }>): Promise<FootprintReply> {
  const p = await startPipeline({
    key: Buffer.from(req.keyHex, 'hex'),
    dir: req.dir,
    broker: null,
    limits: IOT_CORE,
    flushMs: 200,
    maxRecordReadings: 2000,
    durability: 'os',
  });
  const rss: number[] = [];
  const it = pollStream(makeSensors(20), Date.now() - req.readings * 50, 1000);
  const t0 = performance.now();
  let record: Reading[] = [];
  let done = 0;
  let nextMark = req.readings / 10;
  while (done < req.readings) {
    const r = it.next().value as Reading;
    if (record.length > 0 && r.ts - record[0]!.ts >= 200) {
      await p.queue.append(record);
      done += record.length;
      record = [];
      if (done >= nextMark) {
        rss.push(mb());
        nextMark += req.readings / 10;
      }
    }
    record.push(r);
  }
  const seconds = (performance.now() - t0) / 1000;
  const { records, readings } = p.queue.stats();
  await p.stop();
  return { mode: 'fill', records, readings, seconds, rss };
}

async function reopen(req: Extract<FootprintRequest, { mode: 'reopen' }>): Promise<FootprintReply> {
  const p = await startPipeline({
    key: Buffer.from(req.keyHex, 'hex'),
    dir: req.dir,
    broker: { url: `mqtts://localhost:${await closedPort()}`, pki: req.pki },
    limits: IOT_CORE,
    flushMs: 200,
    maxRecordReadings: 2000,
    durability: 'fsync',
  });
  const stopSensors = runSensors((r) => p.sensors.reading(r), { n: 0 });
  const rss: number[] = [];
  const until = Date.now() + req.seconds * 1000;
  while (Date.now() < until) {
    await sleep(250);
    rss.push(mb());
  }
  const heapUsed = process.memoryUsage().heapUsed;
  stopSensors();
  const { readings } = p.queue.stats();
  await p.stop();
  return { mode: 'reopen', readings, rss, heapUsed };
}

async function idle(req: Extract<FootprintRequest, { mode: 'idle' }>): Promise<FootprintReply> {
  const p = await startPipeline({
    dir: req.dir,
    broker: { url: req.url, pki: req.pki },
    limits: IOT_CORE,
    flushMs: 200,
    maxRecordReadings: 2000,
    durability: 'fsync',
  });
  const counter = { n: 0 };
  const stopSensors = runSensors((r) => p.sensors.reading(r), counter);
  // Connect, first records, JIT, and the heap shrinking V8 does once a process turns idle
  // (mark-compacts ~8 s after start): a daemon runs for weeks, so that is start-up, not idle.
  await sleep(IDLE_WARMUP_MS);
  const n0 = counter.n;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await sleep(req.seconds * 1000);
  const c = process.cpuUsage(c0);
  const wallUs = (performance.now() - t0) * 1000;
  const readings = counter.n - n0;
  stopSensors();
  await p.stop();
  return { mode: 'idle', cpuPercent: ((c.user + c.system) / wallUs) * 100, readings, seconds: req.seconds };
}

process.once('message', (req: FootprintRequest) => {
  const run = req.mode === 'fill' ? fill(req) : req.mode === 'reopen' ? reopen(req) : idle(req);
  run.then(
    (reply) => {
      process.send?.(reply, () => process.exit(0));
    },
    (err: unknown) => {
      console.error('bench footprint:', err instanceof Error ? err.message : String(err));
      process.exit(1);
    },
  );
});
