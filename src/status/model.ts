// The daemon's state as the technician sees it (DESIGN.md §5): counters since start, the uplink and
// queue figures (pulled from their stages at snapshot time), and each sensor's last reading.
// Sensor values live only here and leave the process only through the status socket (§2.6).

import type { Clock, Quality, Reading, SensorObserver, UplinkPace, UplinkThroughput } from '../types.js';
import { DrainEstimate, drainSeconds, type QueueRates } from './drain.js';

/** `edgegw status` and `edgegw doctor` warn while fewer days are left on the device certificate. */
export const CERTIFICATE_WARN_DAYS = 30;
import type { ConfigStatus } from '../reload.js';
import type { FleetStatus } from '../fleet/fleet.js';

export type UplinkStateName = 'connected' | 'connecting' | 'backoff' | 'offline';

export interface UplinkStatus {
  state: UplinkStateName;
  /** host:port */
  broker: string;
  /** ms since the epoch when `state` was entered. */
  since: number;
  inflight: number;
  /** An error code (never a payload), or null. */
  lastError: string | null;
  /** What the uplink sent (its totals and recent rates); absent when it does not say. */
  throughput?: UplinkThroughput;
  limits?: { publishesPerSecond: number; bytesPerSecond: number };
  certificate?: CertificateStatus | null;
  protocol?: '3.1.1' | '5';
  pace?: UplinkPace;
}

/** The device certificate's validity, never the certificate itself. */
export interface CertificateStatus {
  subject: string;
  notBefore: number;
  notAfter: number;
  daysLeft: number;
  state: 'valid' | 'expired' | 'not-yet-valid';
}

/** Rates over the last `windowS` seconds, against the configured limits (snapshot `uplink.rates`). */
export interface UplinkRates {
  windowS: number;
  publishesPerSecond: number;
  bytesPerSecond: number;
  limits: { publishesPerSecond: number; bytesPerSecond: number } | null;
}

export interface QueueStatus {
  records: number;
  readings: number;
  bytes: number;
  oldestTs: number | null;
  nextSeq: number;
  firstSeq?: number | null;
  /** Notice records waiting for their PUBACK (not in records/readings). */
  notices?: number;
  /** Records handed to the uplink and waiting in memory for their PUBACK (write-behind; not in records). */
  held?: number;
  /** The queue key sealing new records, and how many older keys still seal queued records. */
  keys?: QueueKeyStatus;
}

export interface QueueKeyStatus {
  /** Key id (never key material); null before the queue opened. */
  sealing: string | null;
  /** Older keys whose records are not all delivered yet (each is retired once they are). */
  older: number;
}

/** The snapshot's queue: the §5 fields, plus the backlog's age and drain estimate. */
export interface QueueSnapshot extends QueueStatus {
  firstSeq: number | null;
  notices: number;
  held: number;
  /** Seconds since the oldest queued reading was taken; null when empty. */
  ageS: number | null;
  /** Recent readings/s in and out (null under a second of history). */
  rates: QueueRates | null;
  /** Seconds to empty the backlog at the recent net rate; null when it is not shrinking. */
  drainS: number | null;
}

export interface StatusCounters {
  /** Readings taken since start. */
  readings: number;
  /** Readings committed to the queue. */
  committed: number;
  /**
   * Readings written to the queue's disk: committed at once, or held for their PUBACK
   * (write-behind) and written because it came late. committed − written never reached the disk.
   */
  written: number;
  /** Readings whose record's PUBACK arrived. */
  delivered: number;
  /** Readings dropped: by the full-queue policy, or never kept (a failed queue write). */
  dropped: number;
  /** Records quarantined as tampered. */
  quarantined: number;
  /** MQTT messages published. */
  messages: number;
  /** Notice records committed (each explains seqs the stream will never carry: DESIGN.md §3). */
  notices: number;
}

export interface SensorStatus {
  id: string;
  /** Last value; null until the sensor was read once. */
  value: number | boolean | null;
  quality: Quality | null;
  ts: number | null;
  errors: number;
  /** Code of the last failed read (e.g. EDGEGW_E_SENSOR_READ), or null. */
  lastError: string | null;
  /** Seconds since the last reading was taken; null until the sensor was read once. */
  ageS: number | null;
}

export interface OverrunStatus {
  scope: string;
  /** How many times the scope fell behind. */
  events: number;
  /** Polls skipped in total. */
  skipped: number;
}

/** The wall clock: trusted or not, and the correction of readings stamped before it was. */
export interface ClockStatus {
  ok: boolean;
  issue: string | null;
  /** Readings are stamped with the wall clock (false: on monotonic time, awaiting the sync). */
  synced: boolean;
  /** What says the clock is good (`clock.source`; `off` when it is trusted from the start). */
  source: string;
  /** How it was found good: `start`, `source` or `jump`; null while unsynced or off. */
  via: string | null;
  /** The correction applied to this run's early readings, ms; null when none was needed. */
  offsetMs: number | null;
  /** This boot's uncorrected records are held back from the uplink. */
  holding: boolean;
  /** Queued ranges of records whose offset is not known (held, or published `unsynced`). */
  pendingRanges: number;
}

export interface StatusSnapshot {
  gateway: string;
  version: string;
  uptimeS: number;
  uplink: UplinkSnapshot;
  queue: QueueSnapshot;
  counters: StatusCounters;
  sensors: SensorStatus[];
  overruns: OverrunStatus[];
  clock: ClockStatus;
  /** The device certificate; null when the uplink does not say (or it does not parse). */
  certificate: (CertificateStatus & { warning: boolean }) | null;
  /** The configuration running: its file, since when (a start or a reload), its hash. */
  config: ConfigStatus | null;
  /** The fleet features (fleet.*): null when the daemon runs none or does not say. */
  fleet: FleetStatus | null;
}

/** The snapshot's uplink: the §5 fields, plus reconnects, bytes sent and the rates. */
export interface UplinkSnapshot {
  state: UplinkStateName;
  broker: string;
  since: number;
  inflight: number;
  lastError: string | null;
  reconnects: number;
  bytesSent: number;
  rates: UplinkRates | null;
  /** MQTT version in use (absent from daemons older than it). */
  protocol?: '3.1.1' | '5';
  /** The adaptive pace against the limits, and why it is lower (absent when the uplink does not say). */
  pace?: UplinkPace;
}

export interface StatusModelOptions {
  gateway: string;
  version: string;
  clock: Clock;
  uplink: () => UplinkStatus;
  queue: () => QueueStatus;
  /**
   * The queue's own figures since start (the queue owns them: sealed-queue.ts sinceStart()). When
   * given, committed, delivered, dropped and quarantined come from here, never kept in parallel.
   */
  queueCounters?: () => QueueCounters;
  clockIssue?: () => string | null;
  clockSync?: () => Omit<ClockStatus, 'ok' | 'issue'>;
  config?: () => ConfigStatus | null;
  fleet?: () => FleetStatus | null;
}

/** What the queue counted since start (readings, except quarantined: records). */
export interface QueueCounters {
  committedReadings: number;
  deliveredReadings: number;
  /** Committed readings dropped by the whenFull policy. */
  droppedReadings: number;
  /** Readings that were never kept (refused, or a failed write): dropped too, for the technician. */
  lostReadings: number;
  /** Readings written to disk (the rest of committed was acknowledged while held in memory). */
  writtenReadings?: number;
  quarantinedRecords: number;
  /** Notice records committed. */
  notices?: number;
}

interface SensorState {
  /**
   * The sensor's last reading itself (readings are never changed): one pointer stored per
   * reading, where copying its number fields boxed two heap numbers each time (GC work).
   */
  last: Reading | null;
  errors: number;
  lastError: string | null;
}

export class StatusModel implements SensorObserver {
  private readonly opts: StatusModelOptions;
  private readonly startedAt: number;
  private readonly counters: StatusCounters = {
    readings: 0,
    committed: 0,
    written: 0,
    delivered: 0,
    dropped: 0,
    quarantined: 0,
    messages: 0,
    notices: 0,
  };
  // Map keeps insertion order: registered sensors first, in configuration order.
  private readonly sensors = new Map<string, SensorState>();
  private readonly overruns = new Map<string, { events: number; skipped: number }>();
  private readonly drain = new DrainEstimate();
  private nextDrainSample = 0;
  /** The reading stamp (wall ms) past which the next reading samples the drain rates. */
  private drainCheckTs = -Infinity;
  private sinceDrainCheck = 0;

  constructor(opts: StatusModelOptions) {
    this.opts = opts;
    this.startedAt = opts.clock.monotonic();
  }

  /** Sensors that were never read still appear in the snapshot. */
  registerSensors(ids: readonly string[]): void {
    for (const id of ids) this.sensor(id);
  }

  reading(r: Reading): void {
    this.counters.readings++;
    this.sensor(r.sensor).last = r;
    // Readings arrive all the time: the cheap moment to sample the counters for the drain rates.
    // The clock is read only when the reading's own stamp moved on (or back), or every 256
    // readings: not once per reading, which cost the pipeline a tenth of its CPU.
    if (r.ts >= this.drainCheckTs || r.ts < this.drainCheckTs - 1000 || ++this.sinceDrainCheck >= 256) {
      this.drainCheckTs = r.ts + 100;
      this.sinceDrainCheck = 0;
      this.sampleDrain();
    }
  }

  error(sensor: string, code: string, _message: string): void {
    const s = this.sensor(sensor);
    s.errors++;
    s.lastError = code;
  }

  overrun(scope: string, skipped: number): void {
    const o = this.overruns.get(scope) ?? { events: 0, skipped: 0 };
    o.events++;
    o.skipped += skipped;
    this.overruns.set(scope, o);
  }

  /** Without the queue's own counters, a commit is a write. */
  committed(readings: number): void {
    this.counters.committed += readings;
    this.counters.written += readings;
  }

  delivered(readings: number): void {
    this.counters.delivered += readings;
  }

  dropped(readings: number): void {
    this.counters.dropped += readings;
  }

  quarantined(records = 1): void {
    this.counters.quarantined += records;
  }

  message(): void {
    this.counters.messages++;
  }

  snapshot(): StatusSnapshot {
    const q = this.opts.queue();
    const u = this.opts.uplink();
    const issue = this.opts.clockIssue?.() ?? null;
    const now = this.opts.clock.now();
    const counters = this.countersNow();
    const mono = this.opts.clock.monotonic();
    this.drain.sample(mono, counters.committed, counters.delivered);
    const rates = this.drain.rates(mono, counters.committed, counters.delivered);
    const t = u.throughput;
    const cert = u.certificate ?? null;
    return {
      gateway: this.opts.gateway,
      version: this.opts.version,
      uptimeS: Math.max(0, Math.floor((mono - this.startedAt) / 1000)),
      uplink: {
        state: u.state,
        broker: u.broker,
        since: u.since,
        inflight: u.inflight,
        lastError: u.lastError,
        reconnects: t?.reconnects ?? 0,
        bytesSent: t?.bytesTotal ?? 0,
        ...(u.protocol === undefined ? {} : { protocol: u.protocol }),
        ...(u.pace === undefined ? {} : { pace: u.pace }),
        rates:
          t === undefined
            ? null
            : {
                windowS: t.windowS,
                publishesPerSecond: t.publishesPerSecond,
                bytesPerSecond: t.bytesPerSecond,
                limits: u.limits ?? null,
              },
      },
      // The §5 fields and what status derives from them: the queue's own stats carry more.
      queue: {
        records: q.records,
        readings: q.readings,
        bytes: q.bytes,
        oldestTs: q.oldestTs,
        nextSeq: q.nextSeq,
        firstSeq: q.firstSeq ?? null,
        notices: q.notices ?? 0,
        held: q.held ?? 0,
        ...(q.keys === undefined ? {} : { keys: { ...q.keys } }),
        ageS: q.oldestTs === null ? null : ageSeconds(now, q.oldestTs),
        rates,
        drainS: drainSeconds(q.readings, rates),
      },
      counters,
      sensors: [...this.sensors].map(([id, s]) => ({
        id,
        value: s.last?.value ?? null,
        quality: s.last?.quality ?? null,
        ts: s.last?.ts ?? null,
        errors: s.errors,
        lastError: s.lastError,
        ageS: s.last === null ? null : ageSeconds(now, s.last.ts),
      })),
      overruns: [...this.overruns].map(([scope, o]) => ({ scope, ...o })),
      clock: {
        ok: issue === null,
        issue,
        ...(this.opts.clockSync?.() ?? {
          synced: true,
          source: 'off',
          via: null,
          offsetMs: null,
          holding: false,
          pendingRanges: 0,
        }),
      },
      certificate:
        cert === null
          ? null
          : {
              subject: cert.subject,
              notBefore: cert.notBefore,
              notAfter: cert.notAfter,
              daysLeft: cert.daysLeft,
              state: cert.state,
              warning: cert.state !== 'valid' || cert.daysLeft < CERTIFICATE_WARN_DAYS,
            },
      config: this.opts.config?.() ?? null,
      fleet: this.opts.fleet?.() ?? null,
    };
  }

  /** At most once a second: a reading must stay cheap. */
  private sampleDrain(): void {
    const mono = this.opts.clock.monotonic();
    if (mono < this.nextDrainSample) return;
    this.nextDrainSample = mono + 1000;
    const c = this.countersNow();
    this.drain.sample(mono, c.committed, c.delivered);
  }

  private countersNow(): StatusCounters {
    const q = this.opts.queueCounters?.();
    if (q === undefined) return { ...this.counters };
    return {
      ...this.counters,
      committed: q.committedReadings,
      written: q.writtenReadings ?? q.committedReadings,
      delivered: q.deliveredReadings,
      dropped: q.droppedReadings + q.lostReadings,
      quarantined: q.quarantinedRecords,
      notices: q.notices ?? 0,
    };
  }

  private sensor(id: string): SensorState {
    let s = this.sensors.get(id);
    if (s === undefined) {
      s = { last: null, errors: 0, lastError: null };
      this.sensors.set(id, s);
    }
    return s;
  }
}

/** Seconds from a wall-clock timestamp to now, to 0.1 s; never negative (a clock step). */
function ageSeconds(now: number, ts: number): number {
  return Math.max(0, Math.round((now - ts) / 100) / 10);
}
