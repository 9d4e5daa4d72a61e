// Section 1 and 2's edgegw run: as many readings as the pipeline takes, end to end from the
// sensor side (timestamp guard, fan-out, status model, Batcher) to the broker's PUBACK, quotas
// lifted. Readings are fed whenever a commit finishes, so
// the Batcher always has a full record waiting (the sensor side is never the bottleneck) and the
// feeder costs no timers. The committed batches are kept to measure the stage floors on them.

import type { DemoPki } from '../src/demo/pki.js';
import type { Reading } from '../src/types.js';
import { LIFTED, startPipeline } from './pipeline.js';

export interface E2eResult {
  readings: number;
  elapsedMs: number;
  cpuUs: number;
  /** The records as committed: seq and readings. */
  records: { seq: number; readings: Reading[] }[];
}

export async function runEdgegwE2e(o: {
  dir: string;
  pki: DemoPki;
  url: string;
  readings: Reading[];
  maxRecordReadings: number;
}): Promise<E2eResult> {
  const n = o.readings.length;
  /** Per record: seq, offset of its first reading in o.readings, count (batches are fed in order). */
  const cuts: number[] = [];
  let fed = 0;
  let committed = 0;
  let delivered = 0;
  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (finish = resolve));
  const p = await startPipeline({
    dir: o.dir,
    broker: { url: o.url, pki: o.pki },
    limits: LIFTED,
    flushMs: 200,
    maxRecordReadings: o.maxRecordReadings,
    durability: 'fsync',
    onCommit: (seq, readings) => {
      if (seq === null) throw new Error('bench: the queue refused a record');
      // Only where each record starts: keeping the batches themselves would have every one of
      // them promoted and marked by the GC, a cost of the bench, not of the pipeline (a daemon
      // keeps nothing it has sent). They are sliced from the readings again after the run.
      if (
        readings[0] !== o.readings[committed] ||
        readings.at(-1) !== o.readings[committed + readings.length - 1]
      )
        throw new Error('bench: a record is not the next readings fed, as they came');
      cuts.push(seq, committed, readings.length);
      committed += readings.length;
      topUp();
    },
    onDelivered: (_seqs, readings) => {
      delivered += readings;
      if (delivered >= n) finish();
    },
  });
  // Wait for the uplink's CONNACK so the run measures the pipeline, not the TLS handshake.
  while (p.uplink?.state().state !== 'connected') await new Promise((r) => setTimeout(r, 10));

  const topUp = (): void => {
    const want = Math.min(n, committed + 3 * o.maxRecordReadings);
    while (fed < want) p.sensors.reading(o.readings[fed++]!);
  };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  topUp();
  await done;
  const elapsedMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await p.stop();
  const records: E2eResult['records'] = [];
  for (let k = 0; k < cuts.length; k += 3) {
    const at = cuts[k + 1]!;
    records.push({ seq: cuts[k]!, readings: o.readings.slice(at, at + cuts[k + 2]!) });
  }
  return { readings: delivered, elapsedMs, cpuUs: cpu.user + cpu.system, records };
}
