// Guards reading timestamps against a wrong or stepping wall clock. Boards without an RTC boot in
// 1970 until NTP steps the clock; NTP may also step it back a little. Consumers order a sensor's
// readings by ts, so:
//  - a sensor's ts never goes backwards: after a backward step its readings keep the previous ts
//    (several readings may share it) until the clock catches up — order stays right, and no
//    reading is dropped;
//  - while the clock reads earlier than the build time it is plainly wrong, and every reading
//    passing through is marked quality 'bad' (kept, not dropped: the value is still true).

import type { Logger } from 'pino';
import type { Clock, Reading, SensorObserver } from '../types.js';

/**
 * No correct clock reads earlier than the day this build was made. Bump it with each release
 * (ms since the epoch; 2026-11-01T00:00:00Z for now).
 */
export const BUILD_TIME = Date.UTC(2026, 10, 1);

export interface TimestampGuardOptions {
  readonly clock: Clock;
  readonly buildTime: number;
  readonly log?: Logger;
  /**
   * True while readings are stamped on monotonic time for a later correction (clock-sync.ts):
   * an implausible wall clock then marks nothing (the correction, or `unsynced`, says it).
   */
  readonly deferred?: () => boolean;
}

export class TimestampGuard {
  private readonly clock: Clock;
  private readonly buildTime: number;
  private readonly log: Logger | undefined;
  private readonly deferred: () => boolean;
  private readonly lastTs = new Map<string, { ts: number }>();
  private ok = true;
  private issue: string | null = null;

  constructor(opts: TimestampGuardOptions) {
    this.clock = opts.clock;
    this.buildTime = opts.buildTime;
    this.log = opts.log;
    this.deferred = opts.deferred ?? (() => false);
  }

  /** The stamps moved by `ms` (the clock sync): each sensor's last ts moves with them. */
  shift(ms: number): void {
    for (const last of this.lastTs.values()) last.ts += ms;
  }

  /** True unless the wall clock currently reads earlier than the build time. */
  clockOk(): boolean {
    this.check();
    return this.ok;
  }

  /** Why the clock is distrusted, for `edgegw status`; null when it is fine. */
  clockIssue(): string | null {
    this.check();
    return this.issue;
  }

  wrap(observer: SensorObserver): SensorObserver {
    return {
      reading: (r) => observer.reading(this.guard(r)),
      error: (sensor, code, message) => observer.error(sensor, code, message),
      overrun: (scope, skipped) => observer.overrun(scope, skipped),
    };
  }

  private guard(r: Reading): Reading {
    // A clock reading before the build time stamps readings before it, so the clock is read only
    // for such a reading, or while it is distrusted (to see it recover): not once per reading.
    if (!this.ok || r.ts < this.buildTime) this.check();
    // One lookup per reading: each sensor's last ts is a slot changed in place.
    const last = this.lastTs.get(r.sensor);
    let ts = r.ts;
    if (last === undefined) this.lastTs.set(r.sensor, { ts });
    else if (ts < last.ts) ts = last.ts;
    else last.ts = ts;
    const implausible = (!this.ok || ts < this.buildTime) && !this.deferred();
    if (ts === r.ts && !implausible) return r;
    return { ...r, ts, quality: implausible ? 'bad' : r.quality };
  }

  private check(): void {
    if (this.deferred()) return;
    const now = this.clock.now();
    const ok = now >= this.buildTime;
    if (ok === this.ok) return;
    this.ok = ok;
    if (!ok) {
      this.issue =
        `wall clock reads ${new Date(now).toISOString()}, before this build ` +
        `(${new Date(this.buildTime).toISOString()}): no RTC or NTP yet; readings are marked bad`;
      this.log?.warn({ code: 'EDGEGW_E_CLOCK', now, buildTime: this.buildTime }, this.issue);
    } else {
      this.issue = null;
      this.log?.info(
        { code: 'EDGEGW_E_CLOCK', now },
        'wall clock is plausible again; readings are no longer marked',
      );
    }
  }
}
