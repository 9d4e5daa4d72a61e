// Compact binary plaintext of a record's readings (what gets sealed). Every byte here is a byte
// per reading on disk (DESIGN.md §7: ≤ 12 for typical readings), so:
//
//   body    = idCount uvarint, ids (sorted, front-coded: shared-prefix uvarint, suffix-length
//             uvarint, suffix UTF-8), then per reading:
//   reading = tag byte, sensor index uvarint, ts delta svarint (from the previous reading's ts,
//             the first from t0, so readings polled together cost one byte), value payload
//   tag     = kind (bits 0-2) | decimal exponent (bits 3-5) | quality (bits 6-7, 0 = good)
//
// Kinds: false, true (no payload); a decimal m / 10^e with m as uvarint and the sign in the kind,
// which is exact for the shortest-decimal values sensors produce (21.6 → 216, two bytes);
// float32 when the double is a float32 value; float64 otherwise. Round trip is exact (Object.is),
// because the decoder performs the same division the encoder checked; the one exception is a value
// that cannot be encoded (NaN, ±Infinity), which reads back as 0 with quality bad.
//
// `encodeReadings` prefixes count and t0 so a body can be decoded alone; the sealer keeps those
// two in the plain record header instead (they are bound as associated data).
//
// The indexed body (record format 3) is the same without the id table: each reading's index is
// the sensor's entry in the queue's sealed dictionary (sensor-ids.ts), which the record does not
// carry. At 200 ms records (~4 readings) the table was ~13 of the ~29 bytes per reading.
//
// The compact body (record format 4) is the indexed body with each reading's tag and index in one
// byte when they fit, which is the usual reading (a positive decimal of good quality, e < 4, one
// of the first 32 sensors):
//
//   short   = 1 (bit 7), e (bits 5-6), index (bits 0-4); then ts delta, m uvarint
//   long    = 0 (bit 7), 1 when quality is not good (bit 6), kind (bits 0-2), e (bits 3-5); then
//             the quality (one byte, 1-3) if bit 6 says so, index uvarint, ts delta, payload
//
// and the first reading's ts delta left out when it is 0 (the record header says so): the first
// reading is the oldest in a record of readings in time order, the usual record.

import type { Quality, Reading } from '../types.js';
import { ByteReader, ByteWriter, uvarintLength } from './bytes.js';

const KIND_FALSE = 0;
const KIND_TRUE = 1;
const KIND_DEC_POS = 2;
const KIND_DEC_NEG = 3;
const KIND_F32 = 4;
const KIND_F64 = 5;

const QUALITIES: readonly Quality[] = ['good', 'bad', 'stale', 'unsynced'];
const QUALITY_BITS: Record<Quality, number> = { good: 0, bad: 1 << 6, stale: 2 << 6, unsynced: 3 << 6 };
const POW10 = [1, 10, 100, 1000, 1e4, 1e5, 1e6, 1e7];
/** Timestamps are integer ms in [0, 2^48): year 10889, and zigzag deltas stay safe integers. */
const MAX_TS = 2 ** 48;

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Readings the codec can carry: a timestamp that is not an integer ms in [0, 2^48) (a clock or
 * driver bug) is rounded or clamped and its reading marked bad, so one reading can never fail the
 * commit of a whole batch. Returns the same array when every reading is fine (the usual case).
 */
export function encodableReadings(readings: readonly Reading[]): readonly Reading[] {
  let fine = true;
  for (let k = 0; k < readings.length; k++) {
    if (!encodableTs(readings[k]!.ts)) {
      fine = false;
      break;
    }
  }
  if (fine) return readings;
  return readings.map((r) => {
    if (encodableTs(r.ts)) return r;
    const rounded = Number.isFinite(r.ts) ? Math.round(r.ts) : 0;
    const ts = Math.min(Math.max(rounded, 0), MAX_TS - 1);
    // A fraction of a millisecond is only rounding; anything else means the time is not known.
    const quality = ts === rounded && Number.isFinite(r.ts) ? r.quality : 'bad';
    return { ...r, ts, quality };
  });
}

/** Whether the codec carries `ts` as it is: an integer ms in [0, 2^48). */
export function encodableTs(ts: number): boolean {
  return Number.isSafeInteger(ts) && ts >= 0 && ts < MAX_TS;
}

/** The smallest t0 (base time) of a non-empty list of readings. */
export function baseTime(readings: readonly Reading[]): number {
  let t0 = Infinity;
  for (let k = 0; k < readings.length; k++) {
    const ts = readings[k]!.ts;
    if (ts < t0) t0 = ts;
  }
  return t0;
}

/** Self-contained encoding: count, t0, then the body. */
export function encodeReadings(readings: readonly Reading[]): Uint8Array {
  const w = scratchWriter();
  const t0 = readings.length === 0 ? 0 : baseTime(readings);
  w.uvarint(readings.length);
  w.uvarint(t0);
  writeBody(w, readings, t0);
  return w.finish();
}

export function decodeReadings(bytes: Uint8Array): { t0: number; readings: Reading[] } {
  const r = new ByteReader(bytes);
  const count = r.uvarint();
  const t0 = r.uvarint();
  const readings = readBody(r, count, t0);
  return { t0, readings };
}

/** The body alone (the sealer carries count and t0 in its header). */
export function encodeBody(readings: readonly Reading[], t0: number): Uint8Array {
  const w = scratchWriter();
  writeBody(w, readings, t0);
  return w.finish();
}

export function decodeBody(bytes: Uint8Array, count: number, t0: number): Reading[] {
  const r = new ByteReader(bytes);
  const ids = readIdTable(r);
  return readReadings(r, count, t0, (i) => ids[i], INDEXED_FORM);
}

/**
 * The body without an id table: `indexOf` gives each sensor's dictionary index. `form` says the
 * layout: format 3's (the default) or the compact one of format 4 (`compactForm`).
 */
export function encodeIndexedBody(
  readings: readonly Reading[],
  t0: number,
  indexOf: (sensor: string) => number,
  form: BodyForm = INDEXED_FORM,
): Uint8Array {
  const w = scratchWriter();
  writeReadings(w, readings, t0, indexOf, form);
  return w.finish();
}

/**
 * Decodes an indexed or compact body written with `form`; `idOf` returns undefined for an index it
 * does not know (then it throws).
 */
export function decodeIndexedBody(
  bytes: Uint8Array,
  count: number,
  t0: number,
  idOf: (index: number) => string | undefined,
  form: BodyForm = INDEXED_FORM,
): Reading[] {
  return readReadings(new ByteReader(bytes), count, t0, idOf, form);
}

/** How a body of dictionary indices is laid out: format 3 (indexed) or 4 (compact, see above). */
export interface BodyForm {
  readonly compact: boolean;
  /** Compact only: the first reading's ts is t0 and its delta is not written. */
  readonly firstAtT0: boolean;
}

/** The three forms there are (shared, so a record opened allocates none). */
export const INDEXED_FORM: BodyForm = { compact: false, firstAtT0: false };
export const COMPACT_FORM: BodyForm = { compact: true, firstAtT0: false };
export const COMPACT_AT_T0_FORM: BodyForm = { compact: true, firstAtT0: true };

/** The compact body's form for these readings (the sealer records `firstAtT0` in its header). */
export function compactForm(readings: readonly Reading[], t0: number): BodyForm {
  return readings.length > 0 && readings[0]!.ts === t0 ? COMPACT_AT_T0_FORM : COMPACT_FORM;
}

/** The distinct dictionary indices an indexed or compact body refers to (it is not otherwise checked). */
export function indicesOf(bytes: Uint8Array, count: number, t0: number, form = INDEXED_FORM): Set<number> {
  const seen = new Set<number>();
  readReadings(
    new ByteReader(bytes),
    count,
    t0,
    (i) => {
      seen.add(i);
      return '';
    },
    form,
  );
  return seen;
}

// One writer for every encoding (they are synchronous and never nested): its buffer grows to
// the largest record once and stays, where a buffer per record (and its doublings) was GC work.
// finish() copies out exactly the bytes written.
const scratch = new ByteWriter(16 * 1024);

function scratchWriter(): ByteWriter {
  scratch.reset();
  return scratch;
}

function writeBody(w: ByteWriter, readings: readonly Reading[], t0: number): void {
  const index = writeIdTable(w, readings);
  writeReadings(w, readings, t0, (sensor) => index.get(sensor) ?? 0, INDEXED_FORM);
}

/** The sorted, front-coded id table of format 1; returns each id's index in it. */
function writeIdTable(w: ByteWriter, readings: readonly Reading[]): Map<string, number> {
  const index = new Map<string, number>();
  for (const r of readings) if (!index.has(r.sensor)) index.set(r.sensor, 0);
  const ids = [...index.keys()].sort();
  w.uvarint(ids.length);
  let prev: Uint8Array = new Uint8Array(0);
  ids.forEach((id, i) => {
    index.set(id, i);
    const b = utf8.encode(id);
    let shared = 0;
    const max = Math.min(prev.length, b.length);
    while (shared < max && prev[shared] === b[shared]) shared++;
    w.uvarint(shared);
    w.uvarint(b.length - shared);
    w.bytes(b.subarray(shared));
    prev = b;
  });
  return index;
}

function writeReadings(
  w: ByteWriter,
  readings: readonly Reading[],
  t0: number,
  indexOf: (sensor: string) => number,
  form: BodyForm,
): void {
  // Only small integers (index, ts delta, tag bits) and the reading itself are passed on: a
  // double passed to a function that is not inlined is boxed, a heap number per reading. (About
  // 16 B per reading are still allocated here, by what the heap profiler did not show.)
  // An index loop: a batch is a holey array (batcher.ts), which for-of iterates the slow way.
  const compact = form.compact;
  for (let k = 0; k < readings.length; k++) {
    const r = readings[k]!;
    const ts = r.ts;
    if (!Number.isSafeInteger(ts) || ts < 0 || ts >= MAX_TS) {
      throw new RangeError(`reading of ${r.sensor}: ts is not an integer ms timestamp`);
    }
    const q = QUALITY_BITS[r.quality];
    if (q === undefined) throw new RangeError(`reading of ${r.sensor}: unknown quality`);
    const index = indexOf(r.sensor);
    const dt = ts - (k === 0 ? t0 : readings[k - 1]!.ts);
    // The compact body's first reading at t0: its delta (0) is not written.
    const noDt = k === 0 && form.firstAtT0;
    const v = r.value;
    if (typeof v === 'boolean') {
      writeHead(w, (v ? KIND_TRUE : KIND_FALSE) | q, index, dt, compact, noDt);
    } else {
      writeNumber(w, index, dt, r, q, compact, noDt);
    }
  }
}

/**
 * A reading's tag (the format-3 tag: kind, e, quality), index and ts delta, in the format-3 or
 * the compact layout; `noDt` leaves the delta out (the compact body's first reading at t0).
 */
function writeHead(
  w: ByteWriter,
  tag: number,
  index: number,
  dt: number,
  compact: boolean,
  noDt: boolean,
): void {
  if (!compact) {
    w.byte(tag);
    w.uvarint(index);
  } else if ((tag & 0xe7) === KIND_DEC_POS && index < 32) {
    // Good quality (bits 6-7 clear), a positive decimal with e < 4 (bit 5 clear).
    w.byte(0x80 | ((tag & 0x18) << 2) | index);
  } else {
    const quality = tag >> 6;
    w.byte((tag & 0x3f) | (quality === 0 ? 0 : 0x40));
    if (quality !== 0) w.byte(quality);
    w.uvarint(index);
  }
  if (!noDt) w.svarint(dt);
}

/** A number reading: tag, index, ts delta, value (r.value is a number). */
function writeNumber(
  w: ByteWriter,
  index: number,
  dt: number,
  r: Reading,
  q: number,
  compact: boolean,
  noDt: boolean,
): void {
  const v = r.value as number;
  if (!Number.isFinite(v)) {
    // NaN/±Infinity cannot be carried (nor sent as JSON): it is written as value 0 with quality
    // bad, the same as a driver's bad reading, instead of failing the whole record.
    writeHead(w, KIND_DEC_POS | QUALITY_BITS.bad, index, dt, compact, noDt);
    w.uvarint(0);
    return;
  }
  const m = asDecimal(r);
  const f32 = Math.fround(v) === v && !Object.is(v, -0);
  if (m >= 0 && (!f32 || uvarintLength(m) <= 4)) {
    writeHead(
      w,
      (v < 0 ? KIND_DEC_NEG : KIND_DEC_POS) | (decimalExponent << 3) | q,
      index,
      dt,
      compact,
      noDt,
    );
    w.uvarint(m);
  } else if (f32 || Object.is(v, -0)) {
    writeHead(w, KIND_F32 | q, index, dt, compact, noDt);
    w.float32(v);
  } else {
    writeHead(w, KIND_F64 | q, index, dt, compact, noDt);
    w.float64(v);
  }
}

/** The e of asDecimal's last m (a module slot: an { m, e } object per reading was GC work). */
let decimalExponent = 0;

/**
 * m with |value| = m / 10^e exactly, for the smallest e in 0..7 that works (e in
 * decimalExponent), or -1. It takes the reading, not the number: a number passed in is boxed.
 */
function asDecimal(r: Reading): number {
  const v = r.value as number;
  if (Object.is(v, -0)) return -1;
  const a = Math.abs(v);
  for (let e = 0; e < POW10.length; e++) {
    const s = POW10[e]!;
    const m = Math.round(a * s);
    if (!Number.isSafeInteger(m)) return -1;
    if (m / s === a) {
      decimalExponent = e;
      return m;
    }
  }
  return -1;
}

function readBody(r: ByteReader, count: number, t0: number): Reading[] {
  const ids = readIdTable(r);
  return readReadings(r, count, t0, (i) => ids[i], INDEXED_FORM);
}

function readIdTable(r: ByteReader): string[] {
  const idCount = r.uvarint();
  const ids: string[] = [];
  let prev: Uint8Array = new Uint8Array(0);
  for (let i = 0; i < idCount; i++) {
    const shared = r.uvarint();
    const suffix = r.bytes(r.uvarint());
    if (shared > prev.length) throw new RangeError('bad sensor id table');
    const b = new Uint8Array(shared + suffix.length);
    b.set(prev.subarray(0, shared));
    b.set(suffix, shared);
    ids.push(utf8Decoder.decode(b));
    prev = b;
  }
  return ids;
}

function readReadings(
  r: ByteReader,
  count: number,
  t0: number,
  idOf: (index: number) => string | undefined,
  form: BodyForm,
): Reading[] {
  const out: Reading[] = new Array<Reading>(count);
  let ts = t0;
  for (let i = 0; i < count; i++) {
    let tag = r.byte();
    let index: number;
    if (!form.compact) {
      index = r.uvarint();
    } else if ((tag & 0x80) !== 0) {
      index = tag & 31;
      tag = KIND_DEC_POS | ((tag >> 2) & 0x18);
    } else {
      let quality = 0;
      if ((tag & 0x40) !== 0) {
        quality = r.byte();
        if (quality < 1 || quality > 3) throw new RangeError('bad reading quality');
      }
      tag = (tag & 0x3f) | (quality << 6);
      index = r.uvarint();
    }
    const quality = QUALITIES[tag >> 6];
    const sensor = idOf(index);
    if (quality === undefined || sensor === undefined) throw new RangeError('bad reading');
    if (i !== 0 || !form.firstAtT0) ts += r.svarint();
    const e = (tag >> 3) & 7;
    let value: number | boolean;
    switch (tag & 7) {
      case KIND_FALSE:
        value = false;
        break;
      case KIND_TRUE:
        value = true;
        break;
      case KIND_DEC_POS:
        value = r.uvarint() / POW10[e]!;
        break;
      case KIND_DEC_NEG:
        value = -(r.uvarint() / POW10[e]!);
        break;
      case KIND_F32:
        value = r.float32();
        break;
      case KIND_F64:
        value = r.float64();
        break;
      default:
        throw new RangeError('bad value kind');
    }
    out[i] = { sensor, ts, value, quality };
  }
  if (r.remaining !== 0) throw new RangeError('trailing bytes after the last reading');
  return out;
}
