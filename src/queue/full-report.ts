// Counts what the queue gave up and says so in the log. Every seq range given up (committed
// records dropped by whenFull, or a seq burned by a failed write) is logged once, structured:
// {code, seqFrom, seqTo, records, readingCount, reason}, every seq in the range given up; the chaos
// suite reads these lines to explain gaps in the delivered stream. Lines come at once for the
// first, then at most once per interval, adjacent ranges coalesced, so a queue that stays full
// does not flood the journal and no range is lost. Counts only, never values (DESIGN.md §2.2, §2.6).

import type { Logger } from 'pino';
import { audit } from '../audit.js';
import type { Clock } from '../types.js';

const LOG_EVERY_MS = 10_000;

export type GiveUpReason = 'whenFull' | 'write-failed';

export interface GivenUp {
  seqFrom: number;
  seqTo: number;
  records: number;
  readings: number;
  reason: GiveUpReason;
}

export interface DropCounters {
  droppedRecords: number;
  droppedReadings: number;
  lostReadings: number;
}

export class FullQueueReport {
  private ranges: GivenUp[] = [];
  private unloggedRecords = 0;
  private unloggedReadings = 0;
  private lastLog = -Infinity;

  constructor(
    private readonly log: Logger,
    private readonly clock: Clock,
    private policy: string,
  ) {}

  /** A reload changed queue.whenFull: later entries name the new policy. */
  setPolicy(policy: string): void {
    this.policy = policy;
  }

  /** Committed records with every seq in [seqFrom, seqTo] given up. */
  gaveUp(range: GivenUp, counters: DropCounters): void {
    const last = this.ranges[this.ranges.length - 1];
    if (last !== undefined && last.reason === range.reason && last.seqTo + 1 === range.seqFrom) {
      last.seqTo = range.seqTo;
      last.records += range.records;
      last.readings += range.readings;
    } else this.ranges.push({ ...range });
    if (range.reason === 'whenFull') this.count(range.records, range.readings, counters);
    else counters.lostReadings += range.readings;
    this.maybeFlush(counters);
  }

  /** A record the policy refused before it got a seq (reject-new, too big, no room on disk). */
  refused(readings: number, counters: DropCounters): void {
    counters.lostReadings += readings;
    this.count(1, readings, counters);
    this.maybeFlush(counters);
  }

  /** Logs what is not logged yet (also called at stop). */
  flush(counters: DropCounters): void {
    for (const r of this.ranges) {
      const code = r.reason === 'whenFull' ? 'EDGEGW_E_QUEUE_FULL' : 'EDGEGW_E_QUEUE_WRITE';
      // `readingCount`, not `readings`: the logger redacts any field named readings (log.ts).
      const { readings, ...rest } = r;
      this.log.warn({ code, ...rest, readingCount: readings }, 'queue gave up records');
    }
    this.ranges = [];
    if (this.unloggedRecords > 0) {
      // The rate-limited summary is also the `queue-full` audit entry (operations issue).
      audit(
        this.log,
        'queue-full',
        {
          code: 'EDGEGW_E_QUEUE_FULL',
          policy: this.policy,
          droppedRecords: this.unloggedRecords,
          droppedReadings: this.unloggedReadings,
          totalDroppedRecords: counters.droppedRecords,
          totalDroppedReadings: counters.droppedReadings,
        },
        'queue full: records dropped',
        'warn',
      );
    }
    this.unloggedRecords = 0;
    this.unloggedReadings = 0;
    this.lastLog = this.clock.now();
  }

  private count(records: number, readings: number, counters: DropCounters): void {
    counters.droppedRecords += records;
    counters.droppedReadings += readings;
    this.unloggedRecords += records;
    this.unloggedReadings += readings;
  }

  private maybeFlush(counters: DropCounters): void {
    if (this.clock.now() - this.lastLog >= LOG_EVERY_MS) this.flush(counters);
  }
}
