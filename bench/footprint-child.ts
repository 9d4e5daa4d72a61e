// Section 5's fill, in a fresh process so nothing the other sections allocated counts: fills a
// queue with N readings (typical site records: 20 sensors at 1 Hz, 200 ms), the stages composed in
// one process, sampling RSS as the backlog grows (a daemon running through an outage). The daemon
// itself (edgegw run) is then measured restarted on that queue, and steady, by daemon-footprint.ts.
// The parent sends one request over IPC and gets one result back.

import type { Reading } from '../src/types.js';
import { answerOnce } from './child.js';
import { makeSensors, pollStream } from './readings.js';
import { IOT_CORE, startPipeline } from './pipeline.js';

export interface FootprintRequest {
  mode: 'fill';
  dir: string;
  keyHex: string;
  readings: number;
}

export interface FootprintReply {
  mode: 'fill';
  records: number;
  readings: number;
  seconds: number;
  /** RSS (bytes) after each tenth of the fill. */
  rss: number[];
}

const mb = (): number => process.memoryUsage.rss();

async function fill(req: FootprintRequest): Promise<FootprintReply> {
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

answerOnce('footprint', fill);
