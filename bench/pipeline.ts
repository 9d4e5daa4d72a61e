// The edgegw pipeline composed from its stages, as src/daemon.ts wires them (without sensor
// drivers, the status socket or systemd): from the sensor side, readings -> timestamp guard ->
// fan-out (status model, Batcher) -> SealedQueue -> QueueRecordSource -> Uplink, with write-behind
// (a record the uplink has room for is handed to it at once and committed only if its PUBACK has
// not come by its deadline) wired as the daemon wires it.

import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import type { DemoPki } from '../src/demo/pki.js';
import { Batcher } from '../src/queue/batcher.js';
import { BUILD_TIME, TimestampGuard } from '../src/sensors/timestamps.js';
import { StatusModel } from '../src/status/model.js';
import { VERSION } from '../src/version.js';
import { QueueRecordSource } from '../src/queue/record-source.js';
import { SealedQueue } from '../src/queue/sealed-queue.js';
import { openedForm, Sealer } from '../src/seal/sealer.js';
import { Keyring } from '../src/seal/keyring.js';
import { systemClock, type Clock, type Reading, type SensorObserver } from '../src/types.js';
import { Uplink, type UplinkLimits } from '../src/uplink/uplink.js';
import type { Compression } from '../src/uplink/wire.js';

export const GATEWAY_ID = 'bench-gw1';
export const TOPIC = 'dt/edgegw/{gateway}/telemetry';

/** Quotas lifted: only the in-flight window limits the uplink. */
export const LIFTED: UplinkLimits = {
  publishesPerSecond: 1_000_000,
  bytesPerSecond: 10 * 1024 ** 3,
  maxPayloadBytes: 128 * 1024,
  inflight: 100,
};

/** IoT Core's quotas, the shipped defaults (DESIGN.md §4). */
export const IOT_CORE: UplinkLimits = {
  publishesPerSecond: 100,
  bytesPerSecond: 512 * 1024,
  maxPayloadBytes: 128 * 1024,
  inflight: 16,
};

export interface PipelineOptions {
  dir: string;
  /** The broker and the PKI to reach it; null leaves the uplink out (records stay queued). */
  broker: { url: string; pki: DemoPki } | null;
  limits: UplinkLimits;
  /** uplink.compression (default none). */
  compression?: Compression;
  flushMs: number;
  maxRecordReadings: number;
  durability: 'fsync' | 'os';
  /** The queue key; a fresh random one by default (pass the same one to reopen a queue). */
  key?: Uint8Array;
  clock?: Clock;
  /** After each commit, with the record's seq and its readings. */
  onCommit?: (seq: number | null, readings: Reading[]) => void;
  onDelivered?: (seqs: number[], readings: number) => void;
}

export interface Pipeline {
  sealer: Sealer;
  queue: SealedQueue;
  batcher: Batcher;
  /** Where sensor drivers hand readings, as in the daemon: the guard, then the status model and the Batcher. */
  sensors: SensorObserver;
  model: StatusModel;
  uplink: Uplink | null;
  /** Commits started and not finished yet. */
  commitsInFlight(): number;
  stop(): Promise<void>;
}

// BENCH_LOG=info (or debug) shows the stages' own logs on stderr.
const silent = pino({ level: process.env.BENCH_LOG ?? 'silent' }, pino.destination(2));

export async function startPipeline(o: PipelineOptions): Promise<Pipeline> {
  const clock = o.clock ?? systemClock;
  const key = o.key ?? randomBytes(32);
  const sealer = await Sealer.create(key);
  // Records are sealed as the daemon seals them: format 3, indices into the sealed sensor-id
  // dictionary of the queue (a bare Sealer writes format 1, with an id table per record).
  const keyring = await Keyring.fromKeys({ key, file: 'bench' });
  const queue = new SealedQueue({
    dir: o.dir,
    maxBytes: 4 * 1024 ** 3,
    whenFull: 'drop-oldest',
    durability: o.durability,
    seal: (seq, readings, ids) => keyring.seal(seq, readings, ids),
    log: silent,
    clock,
    opened: openedForm,
    writeBehind: (): number => uplink?.writeBehindRoom() ?? 0,
  });
  let committing = 0;
  const batcher = new Batcher({
    flushMs: o.flushMs,
    maxReadings: o.maxRecordReadings,
    clock,
    commit: async (readings, durableBy) => {
      committing++;
      try {
        const seq = await queue.append(readings, undefined, durableBy);
        o.onCommit?.(seq, readings);
      } finally {
        committing--;
      }
    },
    onError: (err) => {
      console.error('bench: commit failed:', err instanceof Error ? err.message : String(err));
    },
  });
  const uplink: Uplink | null =
    o.broker === null
      ? null
      : new Uplink({
          gatewayId: GATEWAY_ID,
          url: o.broker.url,
          topic: TOPIC,
          keepaliveMs: 60_000,
          limits: o.limits,
          compression: o.compression ?? 'none',
          backoff: { minMs: 200, maxMs: 2000 },
          tls: { ca: o.broker.pki.caCert, cert: o.broker.pki.clientCert, key: o.broker.pki.clientKey },
          source: new QueueRecordSource(
            queue,
            (rec) => keyring.open(rec, null, queue.sensorIds),
            () => undefined,
          ),
          log: silent,
          clock,
          onMessage: () => model.message(),
          ...(o.onDelivered === undefined ? {} : { onDelivered: o.onDelivered }),
        });
  const model = new StatusModel({
    gateway: GATEWAY_ID,
    version: VERSION,
    clock,
    uplink: () => uplink?.state() ?? { state: 'offline', broker: '', since: 0, inflight: 0, lastError: null },
    queue: () => queue.stats(),
    queueCounters: () => queue.sinceStart(),
  });
  const guard = new TimestampGuard({ clock, buildTime: BUILD_TIME, log: silent });
  const sensors = guard.wrap({
    reading: (r) => {
      model.reading(r);
      batcher.add(r);
    },
    error: (sensor, code, message) => model.error(sensor, code, message),
    overrun: (scope, skipped) => model.overrun(scope, skipped),
  });
  await queue.start();
  await uplink?.start();
  await batcher.start();
  return {
    sealer,
    queue,
    batcher,
    sensors,
    model,
    uplink,
    commitsInFlight: () => committing,
    stop: async () => {
      await batcher.stop();
      await uplink?.stop(2000);
      await queue.stop();
    },
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves when `done()` holds, checking every `everyMs`; rejects after `timeoutMs`. */
export async function waitFor(
  done: () => boolean,
  timeoutMs: number,
  what: string,
  everyMs = 5,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}
