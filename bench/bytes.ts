// Section 3: bytes per reading, on disk and on the wire, for a typical site: 20 sensors at 1 Hz,
// 12-character ids, float values with 1-2 decimals, each sensor at its own phase in the second.
// Records are formed by the real Batcher under a virtual clock (an hour of readings takes no
// hour), sealed and stored by the real SealedQueue; disk bytes are its stored key + value bytes
// of the records and of the sensor-id dictionary they refer to (amortised over every reading).
// Wire bytes are the payloads of full messages of the size the uplink paces a drain with under
// IoT Core's quotas (messageBytes: ~10 KB, just under two 5 KB billing steps), plain and with
// compression: deflate (then ~10 KB compressed), and the CPU deflate adds to packing them.

import type { Clock, Reading } from '../src/types.js';
import { MessagePacker, packMessages, type PackedMessage } from '../src/uplink/wire.js';
import { messageBytes } from '../src/uplink/pacer.js';
import { makeSensors, takeReadings } from './readings.js';
import { GATEWAY_ID, IOT_CORE, startPipeline } from './pipeline.js';

/** Virtual time: timers fire when the feeder moves time forward. */
class VirtualClock implements Clock {
  private t: number;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  private nextId = 1;

  constructor(start: number) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  monotonic(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Moves to `to`, firing due timers in order; returns how many fired. */
  advanceTo(to: number): number {
    let fired = 0;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= to && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
      fired++;
    }
    this.t = Math.max(this.t, to);
    return fired;
  }
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

function cpuUs(since: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return u.user + u.system;
}

export interface BytesResult {
  flushMs: number;
  readings: number;
  records: number;
  diskBytesPerReading: number;
  wireBytesPerReading: number;
  fullMessages: number;
  deflateBytesPerReading: number;
  deflateFullMessages: number;
  /** Live traffic of a caught-up uplink: each record in a message of its own, plain and deflated. */
  liveBytesPerReading: number;
  liveDeflateBytesPerReading: number;
  /** CPU of packing with deflate less packing plain, per reading. */
  deflateUsPerReading: number;
  /** Times a payload was compressed per message. */
  compressionsPerMessage: number;
}

/** Feeds `minutes` of the typical site through Batcher (flushMs) and SealedQueue. */
export async function measureBytes(
  dir: string,
  flushMs: number,
  minutes: number,
  phases: 'spread' | 'aligned',
): Promise<BytesResult> {
  const sensors = makeSensors(20);
  const start = Date.UTC(2025, 0, 1);
  const readings = takeReadings(sensors, start, 1000, minutes * 60 * 20, phases);
  const clock = new VirtualClock(start);
  const records: { seq: number; readings: Reading[] }[] = [];
  const p = await startPipeline({
    dir,
    broker: null,
    limits: IOT_CORE,
    flushMs,
    maxRecordReadings: 2000,
    durability: 'os',
    clock,
    onCommit: (seq, rs) => {
      if (seq !== null) records.push({ seq, readings: rs });
    },
  });
  for (const r of readings) {
    // Let each commit finish before virtual time moves on, as it would in real time.
    if (clock.advanceTo(r.ts) > 0) while (p.commitsInFlight() > 0) await tick();
    p.batcher.add(r);
  }
  clock.advanceTo(clock.now() + flushMs);
  await p.batcher.stop();
  const stats = p.queue.stats();
  const idBytes = p.queue.sensorIdBytes();
  await p.stop();

  const paced = messageBytes(IOT_CORE);
  // Each packing runs twice and the second is timed: the daemon packs warm (JIT) for weeks.
  let messages: PackedMessage[] = [];
  let plainUs = 0;
  let deflated: PackedMessage[] = [];
  let deflateUs = 0;
  let compressions = 0;
  for (let pass = 0; pass < 2; pass++) {
    let cpu = process.cpuUsage();
    messages = packMessages(GATEWAY_ID, records, paced);
    plainUs = cpuUs(cpu);
    const packer = new MessagePacker(GATEWAY_ID, paced, 'deflate');
    cpu = process.cpuUsage();
    deflated = [];
    for (const rec of records) {
      const closed = packer.add(rec);
      if (closed) deflated.push(closed);
    }
    deflated.push(...packer.flushAll());
    deflateUs = cpuUs(cpu);
    compressions = packer.compressions;
  }
  const full = messages.slice(0, -1); // the last one is partial
  const wireBytes = full.reduce((s, m) => s + m.payload.length, 0);
  const wireReadings = full.reduce((s, m) => s + m.readings, 0);
  const dFull = deflated.slice(0, -1);
  const dBytes = dFull.reduce((s, m) => s + m.payload.length, 0);
  const dReadings = dFull.reduce((s, m) => s + m.readings, 0);
  const packed = records.reduce((s, r) => s + r.readings.length, 0);
  // Caught up, the live cursor sends each commit as it comes: one record per message.
  let live = 0;
  let liveDeflated = 0;
  for (const rec of records) {
    live += packMessages(GATEWAY_ID, [rec], paced).reduce((s, m) => s + m.payload.length, 0);
    const packer = new MessagePacker(GATEWAY_ID, paced, 'deflate');
    const closed = packer.add(rec);
    liveDeflated += [...(closed === null ? [] : [closed]), ...packer.flushAll()].reduce(
      (s, m) => s + m.payload.length,
      0,
    );
  }
  return {
    liveBytesPerReading: live / packed,
    liveDeflateBytesPerReading: liveDeflated / packed,
    flushMs,
    readings: stats.readings,
    records: stats.records,
    diskBytesPerReading: (stats.bytes + idBytes) / stats.readings,
    wireBytesPerReading: wireReadings === 0 ? NaN : wireBytes / wireReadings,
    fullMessages: full.length,
    deflateBytesPerReading: dReadings === 0 ? NaN : dBytes / dReadings,
    deflateFullMessages: dFull.length,
    deflateUsPerReading: (deflateUs - plainUs) / packed,
    compressionsPerMessage: compressions / deflated.length,
  };
}
