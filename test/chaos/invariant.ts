// The invariant every chaos scenario ends with (issue 6, DESIGN.md §2.1–2.2):
//   committed = delivered + dropped + quarantined + queued   (records and readings, lifetime totals)
// and the broker's acknowledged seq stream covers 1..nextSeq-1 except seqs still queued, ranges the
// daemon logged as dropped and seqs it logged as quarantined; duplicates only after a crash or a
// reconnect, at most one in-flight window (uplink.limits.inflight × records per message) each.
// Seqs in an acknowledged `skipped` notice (write-behind: held in memory at a crash) are explained
// by the stream itself. Notice records (accounting issue): every seq neither acknowledged nor queued must also be
// explained by an acknowledged notice (its range, or its own seq), unless notices are still
// queued (not yet delivered: the stream has not caught up, which is no loss); the readings the
// delivered notices say were dropped or quarantined never exceed the totals, and equal them once
// every notice is delivered. Only 'lost-with-table' (records a deleted table file took, which no
// notice can know) is explained by the scenario alone.
// Before it reads anything, the daemon is stopped cleanly with the broker up.

import { readLedger, type AckedGap } from './ledger.js';
import type { ChaosSite } from './harness.js';

export interface Totals {
  committedRecords: number;
  committedReadings: number;
  deliveredRecords: number;
  deliveredReadings: number;
  droppedRecords: number;
  droppedReadings: number;
  quarantinedRecords: number;
  quarantinedReadings: number;
}

export interface Inspect {
  records: number;
  readings: number;
  bytes: number;
  firstSeq: number | null;
  nextSeq: number;
  quarantined: number;
  totals?: Totals;
  /** Notice records still queued, gaps not yet sealed, and the lifetime notice figures. */
  notices?: number;
  pendingGaps?: number;
  noticeTotals?: { committed: number; delivered: number; quarantined: number };
}

export interface Figures {
  nextSeq: number;
  queuedRecords: number;
  queuedReadings: number;
  totals: Totals | null;
  ackedRecords: number;
  ackedReadings: number;
  duplicates: number;
  worstEpochDuplicates: number;
  allowedPerEpoch: number;
  epochs: number;
  droppedLogged: number;
  quarantinedLogged: number;
  unexplained: number;
  /** Acknowledged notice records, and seqs missing that no acknowledged notice explains yet. */
  notices: number;
  awaitingNotice: number;
  kills: number;
  starts: number;
}

export class InvariantError extends Error {
  constructor(
    readonly problems: string[],
    readonly figures: Figures,
  ) {
    super(`invariant broken:\n  - ${problems.join('\n  - ')}\n  figures: ${JSON.stringify(figures)}`);
  }
}

interface LogLine {
  code?: string;
  seq?: number;
  seqFrom?: number;
  seqTo?: number;
  records?: number;
  /** The logger redacts any field named `readings`: the queue logs the count as readingCount. */
  readingCount?: number;
  reason?: string;
  /** A notice record, not a data record, was quarantined. */
  notice?: boolean;
  /** Write-behind: the seq ranges (`from-to`) a start explains as skipped (queue/open.ts). */
  seqs?: string[];
  msg?: string;
}

/** Dropped seq ranges and quarantined seqs, as the daemon logged them. */
export function loggedLosses(logText: string): {
  dropped: { from: number; to: number; records: number; readings: number; reason: string }[];
  quarantined: Set<number>;
  /** Seqs a start explained as skipped (held in memory at a crash); their notice may still be queued. */
  skipped: Set<number>;
} {
  const dropped: { from: number; to: number; records: number; readings: number; reason: string }[] = [];
  const quarantined = new Set<number>();
  const skipped = new Set<number>();
  for (const line of logText.split('\n')) {
    if (!line.startsWith('{')) continue;
    let l: LogLine;
    try {
      l = JSON.parse(line) as LogLine;
    } catch {
      continue; // a line torn by SIGKILL
    }
    if (typeof l.seqFrom === 'number' && typeof l.seqTo === 'number') {
      dropped.push({
        from: l.seqFrom,
        to: l.seqTo,
        records: l.records ?? 0,
        readings: l.readingCount ?? 0,
        reason: l.reason ?? '',
      });
    } else if (l.code === 'EDGEGW_E_QUEUE_TAMPERED' && typeof l.seq === 'number' && l.notice !== true) {
      quarantined.add(l.seq);
    } else if (Array.isArray(l.seqs) && (l.msg ?? '').includes('explained as skipped')) {
      for (const r of l.seqs) {
        const m = /^(\d+)-(\d+)$/.exec(r);
        if (m !== null) for (let q = Number(m[1]); q <= Number(m[2]); q++) skipped.add(q);
      }
    }
  }
  return { dropped, quarantined, skipped };
}

/** Stops the daemon cleanly (broker up), reads the queue offline, checks; throws InvariantError. */
export async function checkInvariant(site: ChaosSite): Promise<Figures> {
  const problems: string[] = [];
  if (!site.broker.running) await site.broker.start();
  site.proxy?.steady();
  site.proxy?.pass();
  if (site.daemon.running) {
    const exit = await site.daemon.stop();
    if (exit.code !== 0) problems.push(`clean stop exited ${String(exit.code ?? exit.signal)}`);
  }
  const r = await site.queueCli('inspect');
  if (r.code !== 0) throw new Error(`queue inspect exited ${String(r.code)}: ${r.stderr.trim()}`);
  const inspect = JSON.parse(r.stdout) as Inspect;
  return judge(site, inspect, problems);
}

export function judge(site: ChaosSite, inspect: Inspect, problems: string[]): Figures {
  const ledger = readLedger(site.ledger);
  const losses = loggedLosses(site.daemon.logText());
  const totals = inspect.totals ?? null;

  // Distinct acknowledged records, duplicates per epoch, readings agreeing across copies.
  const readingsOf = new Map<number, number>();
  const dupByEpoch = new Map<number, number>();
  let maxRecsPerMessage = 1;
  const outside = new Set<number>();
  const mismatched = new Set<number>();
  /** Acknowledged notices by their own seq. */
  const gapsOf = new Map<number, AckedGap>();
  for (const m of ledger.messages) {
    maxRecsPerMessage = Math.max(maxRecsPerMessage, m.recs.length);
    for (const rec of m.recs) {
      if (rec.gap !== undefined) {
        const known = gapsOf.get(rec.seq);
        if (known === undefined) gapsOf.set(rec.seq, rec.gap);
        else {
          dupByEpoch.set(m.epoch, (dupByEpoch.get(m.epoch) ?? 0) + 1);
          if (JSON.stringify(known) !== JSON.stringify(rec.gap)) mismatched.add(rec.seq);
        }
        if (readingsOf.has(rec.seq)) mismatched.add(rec.seq);
        if (rec.seq < 1 || rec.seq >= inspect.nextSeq) outside.add(rec.seq);
        continue;
      }
      if (gapsOf.has(rec.seq)) mismatched.add(rec.seq);
      const seen = readingsOf.get(rec.seq);
      if (seen === undefined) readingsOf.set(rec.seq, rec.readings);
      else {
        dupByEpoch.set(m.epoch, (dupByEpoch.get(m.epoch) ?? 0) + 1);
        if (seen !== rec.readings) mismatched.add(rec.seq);
      }
      if (rec.seq < 1 || rec.seq >= inspect.nextSeq) outside.add(rec.seq);
    }
  }
  const sorted = (s: Set<number>): number[] => [...s].sort((a, b) => a - b);
  if (outside.size > 0) {
    problems.push(
      `${outside.size} seqs acknowledged but outside 1..${inspect.nextSeq - 1} (seq reused or records lost): ${ranges(sorted(outside))}`,
    );
  }
  if (mismatched.size > 0) {
    problems.push(
      `${mismatched.size} seqs acknowledged twice with different readings (seq reused): ${ranges(sorted(mismatched))}`,
    );
  }
  if (ledger.unreadable > 0) problems.push(`${ledger.unreadable} acknowledged messages are not telemetry`);
  const allowedPerEpoch = site.inflight * maxRecsPerMessage;
  let duplicates = 0;
  let worst = 0;
  for (const [epoch, n] of dupByEpoch) {
    duplicates += n;
    worst = Math.max(worst, n);
    if (epoch <= 1)
      problems.push(`${n} duplicate acknowledgements on the first connection (no crash or reconnect yet)`);
    if (n > allowedPerEpoch) {
      problems.push(
        `${n} duplicates after one reconnect, more than the in-flight window (${allowedPerEpoch})`,
      );
    }
  }

  // The seq stream: every seq is acknowledged, still queued, logged dropped or logged quarantined.
  const droppedSeqs = new Set<number>();
  for (const d of losses.dropped) for (let s = d.from; s <= d.to; s++) droppedSeqs.add(s);
  // Write-behind (issue 9): seqs held in memory at a crash, delivered or never used, come back
  // as an acknowledged `skipped` notice; the stream itself explains them.
  const skippedSeqs = new Set<number>();
  for (const g of gapsOf.values()) {
    if (g.why === 'skipped') for (let s = g.from; s <= g.to; s++) skippedSeqs.add(s);
  }
  // A skipped notice the last start made may still be queued (not yet acknowledged) when the
  // run ends: the start logged its ranges, as a drop is logged; the stream check below still
  // requires the notice once nothing waits to be delivered.
  for (const s of losses.skipped) skippedSeqs.add(s);
  for (const s of skippedSeqs) droppedSeqs.add(s);
  for (const d of site.explained) for (let s = d.from; s <= d.to; s++) droppedSeqs.add(s);
  const queuedFrom = inspect.firstSeq ?? inspect.nextSeq;
  const gaps: number[] = [];
  for (let s = 1; s < queuedFrom; s++) {
    if (gapsOf.has(s)) continue; // a notice's own seq
    if (!readingsOf.has(s) && !droppedSeqs.has(s) && !losses.quarantined.has(s)) gaps.push(s);
  }
  if (gaps.length > 0)
    problems.push(
      `${gaps.length} seqs unexplained (not acknowledged, queued, dropped or quarantined): ${ranges(gaps)}`,
    );

  // The stream's own explanation: every missing seq below the queue's head is in the range of
  // an acknowledged notice (or is a notice's seq), unless notices still wait to be delivered.
  const noticed = new Set<number>();
  for (const g of gapsOf.values()) for (let s = g.from; s <= g.to; s++) noticed.add(s);
  const tableLost = new Set<number>();
  for (const d of site.explained) {
    if (d.reason === 'lost-with-table') for (let s = d.from; s <= d.to; s++) tableLost.add(s);
  }
  const awaiting: number[] = [];
  for (let s = 1; s < queuedFrom; s++) {
    if (!readingsOf.has(s) && !gapsOf.has(s) && !noticed.has(s) && !tableLost.has(s)) awaiting.push(s);
  }
  const undelivered = (inspect.notices ?? 0) + (inspect.pendingGaps ?? 0);
  if (inspect.noticeTotals === undefined)
    problems.push('inspect has no noticeTotals: notice records are not counted');
  if (awaiting.length > 0 && undelivered === 0) {
    problems.push(
      `${awaiting.length} missing seqs explained by no notice, and none is still queued: ${ranges(awaiting)}`,
    );
  }

  let ackedReadings = 0;
  for (const v of readingsOf.values()) ackedReadings += v;
  if (totals === null) {
    problems.push(
      'inspect has no totals: the lifetime committed/delivered/dropped/quarantined figures are missing',
    );
  } else {
    const t = totals;
    const nt = inspect.noticeTotals;
    if (nt !== undefined && nt.committed !== nt.delivered + nt.quarantined + (inspect.notices ?? 0)) {
      problems.push(
        `notices: committed ${nt.committed} ≠ delivered + quarantined + queued = ${nt.delivered + nt.quarantined + (inspect.notices ?? 0)}`,
      );
    }
    const rec = t.deliveredRecords + t.droppedRecords + t.quarantinedRecords + inspect.records;
    const rdg = t.deliveredReadings + t.droppedReadings + t.quarantinedReadings + inspect.readings;
    if (t.committedRecords !== rec) {
      problems.push(
        `records: committed ${t.committedRecords} ≠ delivered + dropped + quarantined + queued = ${rec}`,
      );
    }
    if (t.committedReadings !== rdg) {
      problems.push(
        `readings: committed ${t.committedReadings} ≠ delivered + dropped + quarantined + queued = ${rdg}`,
      );
    }
    // Notices take seqs of their own (they are not data records: counted apart).
    const notices = inspect.noticeTotals?.committed ?? 0;
    // Skipped seqs (write-behind, after a crash) hold no record, or one acknowledged while held
    // whose counts the crash took before a batch wrote them: between the two bounds.
    // A seq burned by a failed write (or a held record the full disk refused) holds neither a
    // record nor a notice: the log names it (reason write-failed) and a notice explains it.
    const burned = new Set<number>();
    for (const d of losses.dropped) {
      if (d.reason !== 'write-failed') continue;
      for (let s = d.from; s <= d.to; s++) if (!skippedSeqs.has(s)) burned.add(s);
    }
    const used = t.committedRecords + notices + burned.size;
    if (!site.repaired && (used > inspect.nextSeq - 1 || used + skippedSeqs.size < inspect.nextSeq - 1)) {
      problems.push(
        `committed records ${t.committedRecords} + notices ${notices}` +
          (burned.size > 0 ? ` + burned seqs ${burned.size}` : '') +
          ` ≠ nextSeq - 1 = ${inspect.nextSeq - 1}` +
          (skippedSeqs.size > 0 ? ` (less ${skippedSeqs.size} skipped seqs)` : ''),
      );
    }
    const said = (why: string): number | null => {
      let n = 0;
      for (const g of gapsOf.values()) {
        if (g.why !== why) continue;
        if (g.readings === null) return null;
        n += g.readings;
      }
      return n;
    };
    for (const [why, total] of [
      ['dropped', t.droppedReadings],
      ['quarantined', t.quarantinedReadings],
    ] as const) {
      const n = said(why);
      if (n === null) continue;
      if (n > total) problems.push(`notices say ${n} readings were ${why}, the totals count ${total}`);
      // A repair quarantines without notices (and recounts): equality holds only without one.
      else if (undelivered === 0 && !site.repaired && n !== total) {
        problems.push(
          `every notice is delivered, yet they say ${n} readings were ${why} and the totals ${total}`,
        );
      }
    }
    if (t.deliveredRecords > readingsOf.size) {
      problems.push(
        `delivered ${t.deliveredRecords} records but the broker acknowledged only ${readingsOf.size}`,
      );
    }
    if (t.quarantinedRecords < losses.quarantined.size) {
      problems.push(`${losses.quarantined.size} quarantines logged but totals count ${t.quarantinedRecords}`);
    }
  }
  const figures: Figures = {
    nextSeq: inspect.nextSeq,
    queuedRecords: inspect.records,
    queuedReadings: inspect.readings,
    totals,
    ackedRecords: readingsOf.size,
    ackedReadings,
    duplicates,
    worstEpochDuplicates: worst,
    allowedPerEpoch,
    epochs: ledger.epochs,
    droppedLogged: droppedSeqs.size,
    quarantinedLogged: losses.quarantined.size,
    unexplained: gaps.length,
    notices: gapsOf.size,
    awaitingNotice: awaiting.length,
    kills: site.daemon.kills,
    starts: site.daemon.starts,
  };
  if (problems.length > 0) throw new InvariantError(problems, figures);
  return figures;
}

/** 1,2,3,7,9,10 → "1–3, 7, 9–10" (first 12 ranges). */
export function ranges(seqs: number[]): string {
  const out: string[] = [];
  let i = 0;
  while (i < seqs.length) {
    let j = i;
    while (j + 1 < seqs.length && seqs[j + 1] === seqs[j]! + 1) j++;
    out.push(i === j ? `${seqs[i]}` : `${seqs[i]}–${seqs[j]}`);
    i = j + 1;
  }
  return out.length > 12 ? `${out.slice(0, 12).join(', ')}, … (${out.length} ranges)` : out.join(', ');
}
