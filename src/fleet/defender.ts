// Fleet health through AWS IoT Device Defender custom metrics (issue 11): every
// fleet.defender.interval (AWS takes at most one report per 5 minutes, the schema's minimum) a
// report on `$aws/things/<thing>/defender/metrics/json` with the gateway's trouble signs as number
// metrics, so a fleet dashboard sees a gateway in trouble without logging into it. Each custom
// metric must be created in the account (type number) under these names. A report due while
// offline is skipped: Defender wants the present, not a backlog of reports. Defender answers each
// report on `/accepted` or `/rejected` ({statusDetails: {ErrorCode, ErrorMessage}}); a rejection is
// logged with AWS's code and message (a report holds only figures, never readings or secrets) and
// both are counted in status().

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

/** What Defender said of the reports sent since the start. */
export interface DefenderStatus {
  accepted: number;
  rejected: number;
  /** The last rejection: AWS's ErrorCode and ErrorMessage, and the report it answered. */
  lastRejection: { reportId: number; code: string; message: string } | null;
}

export class DefenderReporter {
  private timer: unknown = null;
  private lastId = 0;
  private readonly topic: string;
  private readonly answers: string[];
  private offMessage: (() => void) | null = null;
  private readonly state: DefenderStatus = { accepted: 0, rejected: 0, lastRejection: null };

  constructor(private readonly opts: DefenderOptions) {
    this.topic = `$aws/things/${opts.thing}/defender/metrics/json`;
    this.answers = [`${this.topic}/accepted`, `${this.topic}/rejected`];
  }

  async start(): Promise<void> {
    this.offMessage = this.opts.control.onMessage((topic, payload) => this.answer(topic, payload));
    // Reports go out even when the answers cannot be subscribed (a policy without them).
    await this.opts.control.subscribe(this.answers).catch((err: unknown) => {
      this.opts.log.warn(
        { code: 'EDGEGW_E_FLEET_DEFENDER' },
        `Device Defender's answers are not subscribed (${(err as Error).message}): rejections will not be seen`,
      );
    });
    this.schedule();
  }

  stop(): Promise<void> {
    if (this.timer !== null) this.opts.clock.clearTimeout(this.timer);
    this.timer = null;
    this.offMessage?.();
    this.offMessage = null;
    // The answers stay subscribed, as the shadow's and the jobs' do: the reporter runs as long as
    // the daemon does.
    return Promise.resolve();
  }

  status(): DefenderStatus {
    return { ...this.state };
  }

  private answer(topic: string, payload: Buffer): void {
    if (topic === this.answers[0]) {
      this.state.accepted += 1;
      return;
    }
    if (topic !== this.answers[1]) return;
    let body: { reportId?: unknown; statusDetails?: { ErrorCode?: unknown; ErrorMessage?: unknown } };
    try {
      body = JSON.parse(payload.toString('utf8')) as typeof body;
    } catch {
      body = {};
    }
    const text = (v: unknown, fallback: string) => (typeof v === 'string' ? v.slice(0, 200) : fallback);
    const rejection = {
      reportId: typeof body.reportId === 'number' ? body.reportId : 0,
      code: text(body.statusDetails?.ErrorCode, 'unknown'),
      message: text(body.statusDetails?.ErrorMessage, 'no message'),
    };
    this.state.rejected += 1;
    this.state.lastRejection = rejection;
    this.opts.log.warn(
      { code: 'EDGEGW_E_FLEET_DEFENDER', reportId: rejection.reportId, awsCode: rejection.code },
      `Device Defender rejected report ${rejection.reportId}: ${rejection.code}: ${rejection.message}`,
    );
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
