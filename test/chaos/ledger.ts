// The broker's record of what it acknowledged (written by broker-process.ts): epochs (one per
// client connection) of messages, each a list of (seq, readings).

import { readFileSync } from 'node:fs';

/** What an acknowledged notice record says (DESIGN.md §3): seqs from..to will never come. */
export interface AckedGap {
  from: number;
  to: number;
  why: string;
  readings: number | null;
}

export interface AckedMessage {
  epoch: number;
  recs: { seq: number; readings: number; gap?: AckedGap }[];
}

export interface Ledger {
  messages: AckedMessage[];
  epochs: number;
  /** Lines the broker could not parse as telemetry. */
  unreadable: number;
}

export function readLedger(file: string): Ledger {
  const out: Ledger = { messages: [], epochs: 0, unreadable: 0 };
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line === 'C') out.epochs++;
    else if (line.startsWith('A')) {
      const recs = line
        .slice(1)
        .trim()
        .split(' ')
        .filter((s) => s !== '')
        .map((p) => {
          const [seq, readings, why, range, count] = p.split(':');
          const rec = { seq: Number(seq), readings: Number(readings) };
          if (why === undefined || range === undefined) return rec;
          const [from, to] = range.split('-').map(Number);
          const gap = { from: from!, to: to!, why, readings: count === 'null' ? null : Number(count) };
          return { ...rec, gap };
        });
      out.messages.push({ epoch: out.epochs, recs });
    } else if (line.startsWith('?')) out.unreadable++;
  }
  return out;
}

/** Distinct seqs acknowledged so far. */
export function ackedSeqs(file: string): Set<number> {
  const s = new Set<number>();
  for (const m of readLedger(file).messages) for (const r of m.recs) s.add(r.seq);
  return s;
}

/** Distinct acknowledged readings so far. */
export function ackedReadings(file: string): number {
  const seen = new Map<number, number>();
  for (const m of readLedger(file).messages) for (const r of m.recs) seen.set(r.seq, r.readings);
  let n = 0;
  for (const v of seen.values()) n += v;
  return n;
}
