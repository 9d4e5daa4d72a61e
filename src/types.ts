// The shapes the pipeline stages share (DESIGN.md §1). Stages depend on these, never on each
// other's internals; src/daemon.ts is the only module that knows every stage.

/**
 * `unsynced`: the reading's time could not be established (taken before the wall clock was known
 * good, in a boot that ended before it was); set only when a record is published (clock-ranges.ts).
 */
export type Quality = 'good' | 'bad' | 'stale' | 'unsynced';

/** One sample of one sensor. `ts` is wall-clock ms since the epoch. */
export interface Reading {
  readonly sensor: string;
  readonly ts: number;
  readonly value: number | boolean;
  readonly quality: Quality;
}

/** Readings gathered by the batcher between two commits, in arrival order. */
export interface Batch {
  readonly readings: readonly Reading[];
}

/**
 * A committed batch as stored: opaque sealed bytes plus the few plain facts the queue needs
 * without the key (reading count and oldest timestamp, both bound as associated data).
 */
export interface SealedRecord {
  readonly seq: number;
  readonly count: number;
  readonly t0: number;
  readonly bytes: Uint8Array;
}

/** Why a seq range is missing from the stream (DESIGN.md §3, notice records). */
export type GapWhy = 'dropped' | 'quarantined' | 'write-failed' | 'skipped';

/**
 * What a notice record says: seqs `from`..`to` (inclusive) will never be delivered, and why;
 * `readings` is how many readings they held, or null when that cannot be known.
 */
export interface GapNotice {
  readonly from: number;
  readonly to: number;
  readonly why: GapWhy;
  readonly readings: number | null;
}

/**
 * A record opened in memory just before it is published. A notice record carries `notice`,
 * no readings, and `t0`: when the notice was made (ms since the epoch).
 */
export interface OpenRecord {
  readonly seq: number;
  readonly readings: readonly Reading[];
  readonly notice?: GapNotice;
  readonly t0?: number;
}

/**
 * What the watchdog (src/status/progress.ts) asks a stage: by when it must next show progress.
 * `due` is on `Clock.monotonic()`; null while the stage waits for nothing (idle, stopped), so
 * silence then is no stall. `what` names the awaited step for the log and STATUS= (no values).
 */
export interface Progress {
  readonly due: number | null;
  readonly what: string;
}

/**
 * Anything that can be started and stopped; stop() releases what start() acquired. The daemon's
 * clean stop (DESIGN.md §2.7) calls every stage the same way, in reverse start order, with one
 * `deadline` (a Clock.monotonic() time): a stage with work to finish before it lets go (the
 * uplink's in-flight PUBACKs) waits at most until then, by its own policy; the others need not
 * wait and ignore it.
 */
export interface Lifecycle {
  start(): Promise<void>;
  stop(deadline?: number): Promise<void>;
}

/**
 * Injectable clock and timers, so time-dependent code is tested without waiting. Two times: the
 * wall clock, which NTP (or a board booting without an RTC) may step by hours, is for timestamps
 * only; anything scheduled or measured (grids, backoff, rate limits, uptime) uses `monotonic()`,
 * so a step cannot freeze or flood it.
 */
export interface Clock {
  /** Wall-clock ms since the epoch: for timestamps only. May step backwards or forwards. */
  now(): number;
  /** Ms since an arbitrary origin; never steps, advances with the timers. For scheduling. */
  monotonic(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/**
 * What the uplink pulls from: opened records in `seq` order. The daemon builds it from the queue
 * and the sealer; records that fail authentication are quarantined inside and never returned.
 */
export interface RecordSource {
  /** Up to `limit` records with seq > afterSeq, oldest first (fewer, or none, if not there yet). */
  next(afterSeq: number, limit: number): Promise<OpenRecord[]>;
  /**
   * The broker acknowledged this record: delete it for good. True when it was still queued (now
   * delivered); false when it was gone already (dropped by the full policy while in flight,
   * quarantined, or acknowledged before), so it is not counted delivered.
   */
  ack(seq: number): Promise<boolean>;
  /** Calls `listener` whenever new records were committed; returns an unsubscribe function. */
  onAppend(listener: () => void): () => void;
  /** The highest seq committed so far (0 when none); lets the uplink send live records before a backlog. */
  lastSeq?(): number;
}

/** Where sensor drivers report; the daemon fans this out to the batcher and the status model. */
export interface SensorObserver {
  reading(r: Reading): void;
  /** A failed read (timeout, exception, CRC, disconnect): counted per sensor; `message` has no values. */
  error(sensor: string, code: string, message: string): void;
  /** A bus or sensor could not keep its schedule; `skipped` polls were dropped, not piled up. */
  overrun(scope: string, skipped: number): void;
}

/** What the uplink sent: totals since start and recent rates (status and metrics show them). */
export interface UplinkThroughput {
  /** MQTT PUBLISH packets sent since start. */
  publishesTotal: number;
  /** Bytes of those packets as the quota counts them (payload, topic, header). */
  bytesTotal: number;
  /** Connections after the first one (each CONNACK but the first). */
  reconnects: number;
  /** Rates over the last `windowS` seconds (or since start, when it is shorter). */
  publishesPerSecond: number;
  bytesPerSecond: number;
  windowS: number;
}

/** The uplink's adaptive pace (src/uplink/adaptive-pace.ts): the rates paced to now against the limits. */
export interface UplinkPace {
  /** Share of uplink.limits used now; 1 at the limits. */
  factor: number;
  publishesPerSecond: number;
  bytesPerSecond: number;
  /** Why the pace is below the limits; null at them. */
  reason: string | null;
  /** Publishes the broker refused as over quota (MQTT 5 PUBACK 0x97) since start; all sent again. */
  refused: number;
}
