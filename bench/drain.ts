// Section 4: draining a backlog under IoT Core's quotas (100 publishes/s, 512 KiB/s) with the
// shipped limits, while 20 live sensors at 10 Hz keep arriving. The broker (its own process)
// enforces IoT Core's per-connection rules (publishes over 100/s discarded, bytes over 512 KiB/s
// delayed: src/demo/iotcore-rules.ts) and timestamps every PUBLISH it receives, so the quota figures
// are what the broker saw.

import { randomBytes } from 'node:crypto';
import type { RuleCounts } from '../src/demo/broker.js';
import type { DemoPki } from '../src/demo/pki.js';
import type { Reading } from '../src/types.js';
import type { Compression } from '../src/uplink/wire.js';
import type { BrokerProcess } from './broker.js';
import { askChild } from './child.js';
import type { DrainRequest } from './drain-child.js';
import { makeSensors, nextValue, takeReadings } from './readings.js';
import { IOT_CORE, sleep, startPipeline } from './pipeline.js';

export interface DrainResult {
  backlogReadings: number;
  backlogRecords: number;
  drainMs: number | null;
  /** Backlog readings delivered per second while it drained (NaN when it did not). */
  backlogReadingsPerSecond: number;
  /** Bytes/s at the broker while the backlog drained ÷ the byte quota. */
  byteQuotaUsed: number;
  maxPublishesPerSecond: number;
  maxBytesPerSecond: number;
  /** What the broker's IoT Core rules discarded, delayed or refused during the drain. */
  brokerRules: RuleCounts;
  liveReadings: number;
  liveUndelivered: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Largest count and byte sum of events in any window [t, t + 1000). */
export function maxPerSecond(
  at: readonly number[],
  bytes: readonly number[],
): { count: number; bytes: number } {
  let lo = 0;
  let sum = 0;
  let best = { count: 0, bytes: 0 };
  for (let hi = 0; hi < at.length; hi++) {
    sum += bytes[hi]!;
    while (at[hi]! - at[lo]! >= 1000) sum -= bytes[lo++]!;
    best = { count: Math.max(best.count, hi - lo + 1), bytes: Math.max(best.bytes, sum) };
  }
  return best;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
}

/**
 * A backlog left by an outage: the typical site (20 sensors at 1 Hz) in 200 ms records. The
 * readings are generated here and left behind when it returns, so the drain's heap holds what the
 * daemon's would, not a million readings kept for the bench.
 */
async function fillBacklog(
  dir: string,
  key: Buffer,
  readings: number,
): Promise<{ lastBacklogSeq: number; backlogRecords: number }> {
  const backlog = takeReadings(makeSensors(20), Date.now() - readings * 50 - 60_000, 1000, readings);
  const fill = await startPipeline({
    key,
    dir,
    broker: null,
    limits: IOT_CORE,
    flushMs: 200,
    maxRecordReadings: 2000,
    durability: 'os',
  });
  let record: Reading[] = [];
  for (const r of backlog) {
    if (record.length > 0 && r.ts - record[0]!.ts >= 200) {
      await fill.queue.append(record);
      record = [];
    }
    record.push(r);
  }
  if (record.length > 0) await fill.queue.append(record);
  const stats = fill.queue.stats();
  await fill.stop();
  return { lastBacklogSeq: stats.nextSeq - 1, backlogRecords: stats.records };
}

/** measureDrain in a fresh process with a fresh broker (drain-child.ts). */
export function runDrain(req: DrainRequest): Promise<DrainResult> {
  return askChild(new URL('./drain-child.js', import.meta.url), req, `drain (${req.compression})`);
}

export async function measureDrain(o: {
  dir: string;
  pki: DemoPki;
  broker: BrokerProcess;
  backlogReadings: number;
  maxSeconds: number;
  compression?: Compression;
}): Promise<DrainResult> {
  const key = randomBytes(32);
  const { lastBacklogSeq, backlogRecords } = await fillBacklog(o.dir, key, o.backlogReadings);

  const liveTs = new Map<number, number[]>();
  const latencies: number[] = [];
  let drainEnd: number | null = null;
  await o.broker.record(true);
  const t0 = Date.now();
  const p = await startPipeline({
    key,
    dir: o.dir,
    broker: { url: o.broker.url, pki: o.pki },
    limits: IOT_CORE,
    compression: o.compression ?? 'none',
    flushMs: 200,
    maxRecordReadings: 2000,
    durability: 'fsync',
    onCommit: (seq, readings) => {
      if (seq !== null)
        liveTs.set(
          seq,
          readings.map((r) => r.ts),
        );
    },
    onDelivered: (seqs) => {
      const now = Date.now();
      for (const seq of seqs) {
        if (seq <= lastBacklogSeq) continue;
        for (const ts of liveTs.get(seq) ?? []) latencies.push(now - ts);
        liveTs.delete(seq);
      }
    },
  });
  const liveSensors = makeSensors(20);
  let liveCount = 0;
  const live = setInterval(() => {
    const ts = Date.now();
    for (let i = 0; i < liveSensors.ids.length; i++) {
      p.batcher.add({ sensor: liveSensors.ids[i]!, ts, value: nextValue(liveSensors, i), quality: 'good' });
      liveCount++;
    }
  }, 100);
  const deadline = t0 + o.maxSeconds * 1000;
  while (Date.now() < deadline) {
    const first = p.queue.stats().firstSeq;
    if (drainEnd === null && (first === null || first > lastBacklogSeq)) drainEnd = Date.now();
    if (drainEnd !== null && Date.now() - drainEnd > 3000) break;
    await sleep(20);
  }
  clearInterval(live);
  await p.batcher.stop();
  await sleep(1000); // the last live records' PUBACKs
  const end = Date.now();
  let undelivered = 0;
  for (const tss of liveTs.values()) {
    for (const ts of tss) latencies.push(end - ts); // still waiting: at least this old
    undelivered += tss.length;
  }
  await p.stop();
  await o.broker.record(false);
  const ev = await o.broker.events();

  const drainUntil = drainEnd ?? end;
  let last = -1;
  for (let i = 0; i < ev.at.length; i++) if (ev.at[i]! <= drainUntil) last = i;
  let bytes = 0;
  for (let i = 1; i <= last; i++) bytes += ev.bytes[i]!;
  const span = last > 0 ? (ev.at[last]! - ev.at[0]!) / 1000 : NaN;
  const peak = maxPerSecond(ev.at, ev.bytes);
  latencies.sort((a, b) => a - b);
  return {
    backlogReadings: o.backlogReadings,
    backlogRecords,
    drainMs: drainEnd === null ? null : drainEnd - t0,
    backlogReadingsPerSecond: drainEnd === null ? NaN : (o.backlogReadings / (drainEnd - t0)) * 1000,
    byteQuotaUsed: bytes / span / IOT_CORE.bytesPerSecond,
    maxPublishesPerSecond: peak.count,
    maxBytesPerSecond: peak.bytes,
    brokerRules: ev.rules,
    liveReadings: liveCount,
    liveUndelivered: undelivered,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    maxMs: latencies[latencies.length - 1] ?? NaN,
  };
}
