// The two RecordSources the uplink is tested against, behind one harness: the in-memory source
// (test/unit/uplink/memory-source.ts) and the real one (SealedQueue on disk + QueueRecordSource +
// a libsodium Sealer), with records tampered on disk where a test asks. The harness wraps `ack` to
// see what was acknowledged and returns what the source's ack returned (whether it was still queued).

import { Level } from 'level';
import { QueueRecordSource } from '../../src/queue/record-source.js';
import { KIND_RECORD, queueKey } from '../../src/queue/keys.js';
import type { RecordSource } from '../../src/types.js';
import { MemorySource } from '../unit/uplink/memory-source.js';
import { fixedReadings, queueFixture } from './queue.js';

export interface HarnessSetup {
  /** Records committed before the source is handed out (seqs 1..records). */
  records: number;
  readings?: number;
  /** Seqs whose stored record fails authentication (quarantined when a read meets it). */
  tamper?: number[];
}

export interface SourceHarness {
  source: RecordSource;
  /** Seqs acknowledged through `source.ack`, in order (repeats kept). */
  readonly acked: number[];
  /** Seqs the source quarantined. */
  readonly quarantined: number[];
  /** Commits `count` more records (onAppend fires). */
  append(count: number, readings?: number): Promise<void>;
  /** Removes a record as the full policy would (the source must skip it). */
  drop(seq: number): Promise<void>;
  /** Records the source still holds. */
  held(): Promise<number>;
  close(): Promise<void>;
}

export type MakeHarness = (setup: HarnessSetup) => Promise<SourceHarness>;

function wrap(inner: RecordSource, acked: number[]): RecordSource {
  return {
    next: (after, limit) => inner.next(after, limit),
    ack: (seq) =>
      inner.ack(seq).then((r) => {
        acked.push(seq);
        return r;
      }),
    onAppend: (l) => inner.onAppend(l),
    lastSeq: () => inner.lastSeq?.() ?? 0,
  };
}

export const memoryHarness: MakeHarness = (setup) => {
  const mem = new MemorySource();
  mem.append(setup.records, setup.readings ?? 5);
  for (const seq of setup.tamper ?? []) mem.tamper(seq);
  const acked: number[] = [];
  return Promise.resolve({
    source: wrap(mem, acked),
    acked,
    quarantined: mem.quarantined,
    append: (count, readings = setup.readings ?? 5) => Promise.resolve(mem.append(count, readings)),
    drop: (seq) => Promise.resolve(void mem.records.delete(seq)),
    held: () => Promise.resolve(mem.records.size),
    close: () => Promise.resolve(),
  });
};

/** Flips one bit of a stored record (the database must be closed). */
async function tamperOnDisk(dir: string, seq: number): Promise<void> {
  const db = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
  const v = Uint8Array.from(await db.get(queueKey(KIND_RECORD, seq)));
  v[v.length - 20]! ^= 0x80;
  await db.put(queueKey(KIND_RECORD, seq), v);
  await db.close();
}

export const queueHarness: MakeHarness = async (setup) => {
  const fx = await queueFixture();
  const readings = setup.readings ?? 5;
  const first = fx.make();
  await first.start();
  for (let i = 0; i < setup.records; i++) await first.append(fixedReadings(readings));
  await first.stop();
  for (const seq of setup.tamper ?? []) await tamperOnDisk(fx.dir, seq);
  const queue = fx.make();
  await queue.start();
  const quarantined: number[] = [];
  const acked: number[] = [];
  const inner = new QueueRecordSource(
    queue,
    (rec) => fx.sealer.open(rec),
    (seq) => quarantined.push(seq),
  );
  return {
    source: wrap(inner, acked),
    acked,
    quarantined,
    append: async (count, n = readings) => {
      for (let i = 0; i < count; i++) await queue.append(fixedReadings(n));
    },
    drop: async (seq) => void (await queue.delete(seq)),
    held: () => Promise.resolve(queue.stats().records),
    close: () => fx.cleanup(),
  };
};

export const HARNESSES: { name: string; make: MakeHarness }[] = [
  { name: 'in-memory source', make: memoryHarness },
  { name: 'real queue (SealedQueue + QueueRecordSource + Sealer)', make: queueHarness },
];
