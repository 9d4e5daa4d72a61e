// True timestamps wired across the stages (issue 10), for the composition root: the clock sync
// (src/sensors/clock-sync.ts) stamps what the sensors read and hands the queue its measurement,
// the queue (src/queue/clock-ranges.ts) corrects or holds what it stored, the timestamp guard
// marks nothing while a correction is pending, and status and the audit trail show it. With
// `clock.source: off` there is no clock sync: the pipeline is exactly as without this module.

import type { Logger } from 'pino';
import type { SiteConfig } from './config/schema.js';
import type { SealedQueue } from './queue/sealed-queue.js';
import type { ClockStatus } from './status/model.js';
import { ClockSync, type ClockSyncEvent } from './sensors/clock-sync.js';
import { readBootId, sinceBoot, syncSourceFor, type SyncSource } from './sensors/sync-source.js';
import { BUILD_TIME, TimestampGuard } from './sensors/timestamps.js';
import type { Clock, Reading, SensorObserver } from './types.js';
import { audit } from './audit.js';

/** What tests inject: the sync source (default from `clock.source`), the boot id, ms since boot. */
export interface ClockInputs {
  source?: SyncSource;
  bootId?: string;
  sinceBoot?: () => number;
}

export interface ClockWiring {
  /** A stage (after the queue, before the uplink); null with `clock.source: off`. */
  readonly sync: ClockSync | null;
  readonly guard: TimestampGuard;
  /** The clock sensor drivers stamp with. */
  readonly stampClock: Clock;
  /** The sensors' observer: the guard, then the clock sync's marks, then `inner`. */
  observer(inner: SensorObserver): SensorObserver;
  /** The batcher's commit; `durableBy` lets the queue hold it for its PUBACK (write-behind). */
  commit(readings: Reading[], durableBy?: number): Promise<number | null>;
  clockIssue(): string | null;
  status(): Omit<ClockStatus, 'ok' | 'issue'>;
}

export async function wireClock(opts: {
  site: SiteConfig;
  queue: SealedQueue;
  clock: Clock;
  log: Logger;
  inputs?: ClockInputs;
}): Promise<ClockWiring> {
  const { site, queue, clock, log } = opts;
  const source =
    opts.inputs?.source ?? (await syncSourceFor(site.clock.source, site.clock.syncFile, clock, BUILD_TIME));
  const bootId = source === null ? '' : (opts.inputs?.bootId ?? (await readBootId()));
  let guard: TimestampGuard | null = null;
  const sync =
    source === null
      ? null
      : new ClockSync({
          clock,
          source,
          bootId,
          sinceBoot: opts.inputs?.sinceBoot ?? sinceBoot,
          pollMs: site.clock.poll,
          jumpMs: site.clock.jump,
          holdMs: site.clock.hold,
          log: log.child({ stage: 'clock' }),
          onSync: (e) => clockCorrected(queue, e, log),
          onHold: (holding) => queue.holdClock(bootId, holding),
          onShift: (ms) => guard?.shift(ms),
        });
  guard = new TimestampGuard({ clock, buildTime: BUILD_TIME, log, deferred: () => sync?.stamping === true });
  const g = guard;
  return {
    sync,
    guard: g,
    stampClock: sync?.stampClock ?? clock,
    // The clock sync marks what the batcher gets (the guard may copy a reading), so it is inside.
    observer: (inner) => g.wrap(sync?.wrap(inner) ?? inner),
    commit: (readings, durableBy) => {
      if (sync === null) return queue.append(readings, undefined, durableBy);
      const c = sync.commit(readings);
      return queue.append(c.readings, c.stamp, durableBy);
    },
    clockIssue: () =>
      sync?.stamping === true
        ? `wall clock not known good yet (source ${sync.status().source}): readings are stamped ` +
          'on monotonic time and corrected at the sync'
        : g.clockIssue(),
    status: () => {
      const s = queue.stats();
      return {
        ...(sync?.status() ?? { synced: true, source: 'off', via: null, offsetMs: null, holding: false }),
        pendingRanges: queue.clockRanges.pending(s.firstSeq ?? s.nextSeq),
      };
    },
  };
}

/** The clock is good: the queue corrects this boot's ranges, and the audit trail says so. */
async function clockCorrected(queue: SealedQueue, e: ClockSyncEvent, log: Logger): Promise<void> {
  const corrected = await queue.clockSynced(e.boot, e.wallBase);
  if (e.offset === null && corrected.length === 0) return;
  audit(
    log,
    'clock-correction',
    {
      via: e.via,
      offsetMs: e.offset,
      // seqs from-to and the offset each range got (a range of an earlier run has its own).
      ranges: corrected.map((r) => `${r.from}-${r.to}:${r.offset ?? 0}`),
    },
    `wall clock known good (${e.via}): readings stamped before are corrected` +
      (e.offset === null ? '' : ` by ${e.offset} ms`),
  );
}
