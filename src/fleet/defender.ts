// Fleet health through AWS IoT Device Defender custom metrics (issue 11): every
// fleet.defender.interval (AWS takes at most one report per 5 minutes, the schema's minimum) a
// report on `$aws/things/<thing>/defender/metrics/json` with the gateway's trouble signs as number
// metrics, so a fleet dashboard sees a gateway in trouble without logging into it. Each custom
// metric must be created in the account (type number) under these names. A report due while
// offline is skipped: Defender wants the present, not a backlog of reports.

import type { Logger } from 'pino';
import type { Clock } from '../types.js';
import type { Control } from '../uplink/control.js';

export interface DefenderFigures {
  backlogReadings: number;
  backlogAgeS: number | null;
  droppedReadings: number;
  quarantinedRecords: number;
  uplinkReconnects: number;
}

export interface DefenderOptions {
  control: Control;
  thing: string;
  intervalMs: number;
  clock: Clock;
  log: Logger;
  figures: () => DefenderFigures;
}

export class DefenderReporter {
  private timer: unknown = null;
  private lastId = 0;
  private readonly topic: string;

  constructor(private readonly opts: DefenderOptions) {
    this.topic = `$aws/things/${opts.thing}/defender/metrics/json`;
  }

  start(): Promise<void> {
    this.schedule();
    return Promise.resolve();
  }

  stop(): Promise<void> {
    if (this.timer !== null) this.opts.clock.clearTimeout(this.timer);
    this.timer = null;
    return Promise.resolve();
  }

  /** The report as Defender's device-side metrics document shapes it. */
  report(): Record<string, unknown> {
    const f = this.opts.figures();
    // report_id: epoch seconds, and always above the last (a clock step back must not repeat one).
    this.lastId = Math.max(this.lastId + 1, Math.floor(this.opts.clock.now() / 1000));
    const n = (v: number) => [{ number: v }];
    return {
      header: { report_id: this.lastId, version: '1.0' },
      // AWS's device metrics document requires the metrics block; edgegw reports none of the
      // standard network metrics (a gateway's OS agent does), so it is empty.
      metrics: {},
      custom_metrics: {
        edgegw_backlog_readings: n(f.backlogReadings),
        edgegw_backlog_age_s: n(f.backlogAgeS ?? 0),
        edgegw_dropped_readings: n(f.droppedReadings),
        edgegw_quarantined_records: n(f.quarantinedRecords),
        edgegw_uplink_reconnects: n(f.uplinkReconnects),
      },
    };
  }

  private schedule(): void {
    this.timer = this.opts.clock.setTimeout(() => {
      this.schedule();
      if (!this.opts.control.connected) return;
      this.opts.control.publish(this.topic, JSON.stringify(this.report())).catch((err: unknown) => {
        this.opts.log.warn(
          { code: 'EDGEGW_E_FLEET_DEFENDER' },
          `defender report not sent (${(err as Error).message})`,
        );
      });
    }, this.opts.intervalMs);
  }
}
