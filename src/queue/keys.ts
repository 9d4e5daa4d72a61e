// The queue's LevelDB key layout, and reading stored values back. Keys are 8 bytes: a kind byte, then seq in 7 bytes big-endian,
// so records sort by seq and every seq up to 2^53 fits.
//   0x00 seq  a record (the sealed value)
//   0x01 ..   meta: next seq and the quarantined count (8-byte float64 values), and the stored
//             figures (records, readings, record bytes, quarantine bytes: 4 float64 values), and
//             the lifetime totals (totals.ts: 8 float64 values)
//   0x02 seq  a quarantined record
//   0x0a seq  a notice record (notices.ts): sealed like a record, in the same seq space
//   0x01..20  meta: the notice totals (3 float64), 0x01..21: the pending gaps (plain JSON of seq
//             ranges and counts); kept apart from other meta keys on purpose
//   0x0c idx  the sensor-id dictionary (seal/sensor-ids.ts): entry `idx` (7 bytes big-endian),
//             sealed with a queue key (no plaintext id); written before or with any record using it
//   0x01..40  meta: the next sensor-id dictionary index (float64)
//   0x01..41  meta: write-behind's reserved seq (float64, write-behind.ts)
//   0x01..42  meta: write-behind's settled seq (float64, write-behind.ts)
//   0x01..50  meta: the nonce salts of compact records (seal/nonce-salts.ts)

import type { SealedRecord } from '../types.js';
import { parseSealedHeader } from '../seal/sealer.js';

export const KIND_RECORD = 0x00;
export const KIND_QUARANTINE = 0x02;
export const META_NEXT_SEQ = Uint8Array.of(0x01, 0, 0, 0, 0, 0, 0, 1);
export const META_QUARANTINED = Uint8Array.of(0x01, 0, 0, 0, 0, 0, 0, 2);
export const META_FIGURES = Uint8Array.of(0x01, 0, 0, 0, 0, 0, 0, 3);
export const META_TOTALS = Uint8Array.of(0x01, 0, 0, 0, 0, 0, 0, 5);
export const META_NOTICE_TOTALS = Uint8Array.of(0x01, 0, 0, 0, 0, 0, 0, 0x20);
export const META_PENDING_GAPS = Uint8Array.of(0x01, 0, 0, 0, 0, 0, 0, 0x21);
// Every meta key lives here, so two features can never pick the same one (META_ALL is checked).
/** Key ids by seq range (key-ranges.ts). */
export const META_KEYS = Uint8Array.of(0x01, 0, 0, 0, 0, 0, 0, 4);
/** Seq ranges stamped before the wall clock was known good (clock-ranges.ts). */
export const META_CLOCK = Uint8Array.of(0x01, 0, 0, 0, 0, 0, 0, 0x30);
/** The next sensor-id dictionary index (seal/sensor-ids.ts): never handed out twice, even if entries are lost. */
export const META_SENSOR_ID_NEXT = Uint8Array.of(0x01, 0, 0, 0, 0, 0, 0, 0x40);
/** Write-behind (write-behind.ts): every seq below it is stored, delivered or explained. */
export const META_SETTLED = Uint8Array.of(0x01, 0, 0, 0, 0, 0, 0, 0x42);
/** Write-behind: no seq at or above it was handed out unwritten; 0 when none is reserved. */
export const META_RESERVED = Uint8Array.of(0x01, 0, 0, 0, 0, 0, 0, 0x41);
/** The nonce salts of compact records, by seq epoch (seal/nonce-salts.ts; also in SALTS_FILE). */
export const META_SALTS = Uint8Array.of(0x01, 0, 0, 0, 0, 0, 0, 0x50);
/** All meta keys, for the test that they are distinct. */
export const META_ALL: Readonly<Record<string, Uint8Array>> = {
  META_NEXT_SEQ,
  META_QUARANTINED,
  META_FIGURES,
  META_KEYS,
  META_TOTALS,
  META_NOTICE_TOTALS,
  META_PENDING_GAPS,
  META_CLOCK,
  META_SENSOR_ID_NEXT,
  META_SETTLED,
  META_RESERVED,
  META_SALTS,
};
export const RECORD_END = Uint8Array.of(0x01);
export const QUARANTINE_END = Uint8Array.of(0x03);
export const KIND_NOTICE = 0x0a;
export const NOTICE_END = Uint8Array.of(0x0b);
export const KIND_SENSOR_ID = 0x0c;
export const SENSOR_ID_END = Uint8Array.of(0x0d);

export function queueKey(kind: number, seq: number): Uint8Array {
  const k = new Uint8Array(8);
  const v = new DataView(k.buffer);
  v.setUint8(0, kind);
  v.setUint8(1, Math.floor(seq / 2 ** 48));
  v.setUint16(2, Math.floor(seq / 2 ** 32) % 0x10000);
  v.setUint32(4, seq % 2 ** 32);
  return k;
}

export function seqOfKey(k: Uint8Array): number {
  const v = new DataView(k.buffer, k.byteOffset, k.byteLength);
  return v.getUint8(1) * 2 ** 48 + v.getUint16(2) * 2 ** 32 + v.getUint32(4);
}

export function numberValue(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setFloat64(0, n);
  return b;
}

export function readNumber(b: Uint8Array | undefined): number {
  return b?.length === 8 ? new DataView(b.buffer, b.byteOffset, 8).getFloat64(0) : 0;
}

/** What is stored, kept in META_FIGURES in the same batch as every change, so a start needs no scan. */
export interface StoredFigures {
  records: number;
  readings: number;
  /** Key + value bytes of the records. */
  recordBytes: number;
  /** Key + value bytes of the quarantined records. */
  quarantineBytes: number;
}

export function figuresValue(f: StoredFigures): Uint8Array {
  const b = new Uint8Array(32);
  const v = new DataView(b.buffer);
  v.setFloat64(0, f.records);
  v.setFloat64(8, f.readings);
  v.setFloat64(16, f.recordBytes);
  v.setFloat64(24, f.quarantineBytes);
  return b;
}

/** The stored figures, or null when absent (a queue written before they were kept) or malformed. */
export function readFigures(b: Uint8Array | undefined): StoredFigures | null {
  if (b?.length !== 32) return null;
  const v = new DataView(b.buffer, b.byteOffset, 32);
  const f = {
    records: v.getFloat64(0),
    readings: v.getFloat64(8),
    recordBytes: v.getFloat64(16),
    quarantineBytes: v.getFloat64(24),
  };
  return Object.values(f).every((n) => Number.isSafeInteger(n) && n >= 0) ? f : null;
}

/** LevelDB's own words (e.g. "Corruption: …"), which name files, never stored values. */
export function causeText(err: unknown): string {
  const cause = (err as { cause?: unknown }).cause;
  return cause instanceof Error ? cause.message : String(err);
}

/** A stored value as a SealedRecord; a malformed header yields count 0, and opening it fails. */
export function toRecord(seq: number, bytes: Uint8Array): SealedRecord {
  try {
    return parseSealedHeader(seq, bytes);
  } catch {
    return { seq, count: 0, t0: 0, bytes };
  }
}
