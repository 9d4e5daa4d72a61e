// Whether the pipeline makes progress, so WATCHDOG=1 means something (issue 7). Each stage answers
// a small probe: by when it must next show progress (a grid's next slot plus the longest a tick may
// take, the batcher's oldest waiting reading plus flush, the uplink's connect, reconnect, PUBACK or
// pull deadline), or nothing while idle. The monitor decides: a deadline passed by more than the
// tolerance is a stall, and so is a check that ran much later than asked (a blocked event loop).
//
// What is no stall, because a restart would not help: a broker outage (the uplink's timers still
// fire), a dead Modbus device (its reads time out), a full disk (commits fail, and failing is
// settling). What is: a commit that never settles (a hung filesystem), a grid that stopped firing,
// an uplink whose state machine stopped moving, an event loop blocked for long.

import type { Clock, Progress } from '../types.js';

export interface ProgressProbe {
  /** Who answers, for the reason: `batcher`, `uplink`, `sensors boiler-temp,door-1`. */
  readonly name: string;
  progress(): Progress | readonly Progress[];
}

export interface Health {
  readonly healthy: boolean;
  /** Why not, in one line (names and durations, never values); null when healthy. */
  readonly reason: string | null;
}

/** What SdNotify asks before each WATCHDOG=1; `intervalMs` is its ping interval. */
export interface HealthCheck {
  check(intervalMs: number): Health;
}

export interface ProgressMonitorOptions {
  readonly clock: Clock;
  /** Read at every check: the set of stages may change (a reload adds or removes sensor groups). */
  readonly probes: () => readonly ProgressProbe[];
  /** Slack past a deadline before it counts as a stall; default: the ping interval. */
  readonly toleranceMs?: number;
}

export const HEALTHY: Health = Object.freeze({ healthy: true, reason: null });

export class ProgressMonitor implements HealthCheck {
  private readonly opts: ProgressMonitorOptions;
  private lastCheck: number | null = null;

  constructor(opts: ProgressMonitorOptions) {
    this.opts = opts;
  }

  /**
   * Checks every probe now (monotonic time). With the default tolerance of one ping interval, a
   * stall stops the pings within two intervals of its deadline, i.e. within one WatchdogSec.
   */
  check(intervalMs: number): Health {
    const now = this.opts.clock.monotonic();
    const tolerance = this.opts.toleranceMs ?? intervalMs;
    const reasons: string[] = [];
    const last = this.lastCheck;
    this.lastCheck = now;
    // Checks are asked for every interval; one that ran more than half an interval late had the
    // event loop blocked (a synchronous read of a hung device, a runaway loop) at least that long.
    const lag = last === null ? 0 : now - last - intervalMs;
    if (lag > intervalMs / 2) reasons.push(`event loop blocked for ${seconds(lag)} s`);
    for (const probe of this.opts.probes()) {
      const answers = probe.progress();
      for (const p of isList(answers) ? answers : [answers]) {
        if (p.due !== null && now - p.due > tolerance) {
          reasons.push(`${probe.name}: ${p.what} overdue by ${seconds(now - p.due)} s`);
        }
      }
    }
    return reasons.length === 0 ? HEALTHY : { healthy: false, reason: reasons.join('; ') };
  }
}

function isList(p: Progress | readonly Progress[]): p is readonly Progress[] {
  return Array.isArray(p);
}

function seconds(ms: number): string {
  return (Math.round(ms / 100) / 10).toFixed(1);
}
