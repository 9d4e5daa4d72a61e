// Counts what the whenFull policy dropped and says so in the log: the first drop at once, then
// at most one summary per interval, so a queue that stays full does not flood the journal.
// Counts only, never values (DESIGN.md §2.2, §2.6).

import type { Logger } from 'pino';
import type { Clock } from '../types.js';

const LOG_EVERY_MS = 10_000;

export interface DropCounters {
  droppedRecords: number;
  droppedReadings: number;
}

export class FullQueueReport {
  private unloggedRecords = 0;
  private unloggedReadings = 0;
  private lastLog = -Infinity;

  constructor(
    private readonly log: Logger,
    private readonly clock: Clock,
    private readonly policy: string,
  ) {}

  dropped(records: number, readings: number, counters: DropCounters): void {
    counters.droppedRecords += records;
    counters.droppedReadings += readings;
    this.unloggedRecords += records;
    this.unloggedReadings += readings;
    if (this.clock.now() - this.lastLog >= LOG_EVERY_MS) this.flush(counters);
  }

  /** Logs drops not yet logged (also called at stop). */
  flush(counters: DropCounters): void {
    if (this.unloggedRecords === 0) return;
    this.log.warn(
      {
        code: 'EDGEGW_E_QUEUE_FULL',
        policy: this.policy,
        droppedRecords: this.unloggedRecords,
        droppedReadings: this.unloggedReadings,
        totalDroppedRecords: counters.droppedRecords,
        totalDroppedReadings: counters.droppedReadings,
      },
      'queue full: records dropped',
    );
    this.unloggedRecords = 0;
    this.unloggedReadings = 0;
    this.lastLog = this.clock.now();
  }
}
