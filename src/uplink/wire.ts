// The MQTT payload (DESIGN.md §3): one message holds whole records in seq order, lists each sensor
// id once, and stands alone. Packing is incremental: each record's JSON is written once (as bytes),
// and a message is assembled from those bytes when it is full, never re-encoded per added record.
//
// With `compression: deflate` the payload is that JSON as a zlib stream (RFC 1950, first byte
// 0x78), and the size limit applies to the compressed bytes. Compressing is the costly step, so it
// runs as rarely as possible: the compressed size is estimated from the plain size with the ratio
// last measured, and the message is compressed only when the estimate reaches the limit
// (~1.3 times per message on typical data). Records that did not fit are carried into the next
// message, whole and in seq order.

import { deflateSync } from 'node:zlib';
import type { OpenRecord, Reading } from '../types.js';

export type Compression = 'none' | 'deflate';

export interface PackedMessage {
  payload: Buffer;
  seqs: number[];
  readings: number;
  /** The payload is a zlib stream of the JSON (MQTT 5 content type `application/zlib`). */
  compressed: boolean;
}

/**
 * zlib level 6 (its default): on the typical site's data it gives 4.4 B/reading at ~50 MB/s;
 * level 5 misses the 4.5 B target, level 7 saves 3% for ~40% more CPU and 9 saves 4% for 2.5×.
 * memLevel 9 measured no smaller than the default 8 on ~50 KB messages and costs more memory.
 */
export const DEFLATE_OPTIONS = { level: 6, memLevel: 8 } as const;
/**
 * The largest plain JSON a compressed message holds, whatever the ratio: a bound a decoder can
 * rely on to refuse a decompression bomb, and on the memory one open message takes here.
 */
export const MAX_INFLATED_BYTES = 1024 * 1024;
/** Compress when the estimated size reaches this share of the limit… */
const CHECK_AT = 0.98;
/** …and close the message when the measured size is at least this share (else keep filling). */
const FULL_AT = 0.96;
/** The compressed ÷ plain ratio assumed before any message was measured (typical sensor data). */
const FIRST_RATIO = 0.2;

/** The zlib stream of a plain message. */
export function deflatePayload(json: string | Buffer): Buffer {
  return deflateSync(json, DEFLATE_OPTIONS);
}

// A record's JSON is written as bytes into a scratch buffer, digit by digit: building it as a
// string cost twice JSON.stringify of the same message (the string's pieces, then flattening and
// encoding them to UTF-8). It is ASCII (numbers, brackets, quality words; ids are listed apart).
let scratch = Buffer.allocUnsafe(64 * 1024);
let at = 0;

/** Room for `n` more bytes in the scratch buffer. */
function room(n: number): void {
  if (at + n <= scratch.length) return;
  const bigger = Buffer.allocUnsafe(Math.max(2 * scratch.length, at + n));
  scratch.copy(bigger, 0, 0, at);
  scratch = bigger;
}

/** An ASCII string (room made by the caller). */
function putAscii(text: string): void {
  for (let i = 0; i < text.length; i++) scratch[at++] = text.charCodeAt(i);
}

/** A number as JSON.stringify writes it; integers digit by digit (room made by the caller). */
function putInt(n: number): void {
  if (!Number.isSafeInteger(n)) {
    putAscii(Number.isFinite(n) ? String(n) : 'null');
    return;
  }
  if (n < 0) {
    scratch[at++] = 45; // '-'
    n = -n;
  }
  if (n < 10) {
    scratch[at++] = 48 + n;
    return;
  }
  const first = at;
  while (n > 0) {
    const q = Math.floor(n / 10);
    scratch[at++] = 48 + (n - 10 * q);
    n = q;
  }
  for (let a = first, b = at - 1; a < b; a++, b--) {
    const d = scratch[a]!;
    scratch[a] = scratch[b]!;
    scratch[b] = d;
  }
}

/**
 * A value exactly as JSON.stringify writes it (null for a non-finite number: JSON has no NaN or
 * Infinity). Sensor values carry few decimals (the sensor's `decimals`), so a value that is
 * exactly its integer of hundredths ÷ 100 is written from that integer: the decimal it gives is
 * then the only one of at most two decimals that reads back as the value (below 1e13 two of them
 * are 0.01 apart, far more than the value's precision), so it is the shortest, which is what
 * JSON.stringify writes, at a fraction of the cost of the general double-to-text conversion.
 * Any other value takes String (room made by the caller).
 */
function putValue(v: number | boolean): void {
  if (typeof v !== 'number') {
    putAscii(v ? 'true' : 'false');
    return;
  }
  const a = v < 0 ? -v : v;
  if (a < 1e13) {
    const h = Math.round(a * 100);
    if (h / 100 === a) {
      if (v < 0) scratch[at++] = 45; // -0 is written 0, as JSON.stringify does
      const whole = Math.floor(h / 100);
      const cents = h - whole * 100;
      putInt(whole);
      if (cents === 0) return;
      scratch[at++] = 46; // '.'
      if (cents % 10 === 0) putInt(cents / 10);
      else {
        if (cents < 10) scratch[at++] = 48;
        putInt(cents);
      }
      return;
    }
  }
  putAscii(Number.isFinite(v) ? String(v) : 'null');
}

/** The most bytes one reading takes: three numbers of String's longest form, quality, punctuation. */
const READING_ROOM = 3 * 25 + 16;

/**
 * One record's JSON, with sensor indices from `index` (new ids are appended to it and to `added`):
 * `{"seq":…,"t0":…,"r":[[i,dt,value],…]}`, a reading that is not good adding `,"quality"`.
 */
/**
 * Gives every sensor of `readings[from..]` the message does not list yet the next index, in sorted
 * order: ids of one site share prefixes (`ahu1-supply-t`, `ahu1-return-t`), and listed side by side
 * they deflate better (a live message of 20 readings: ~0.3 B per reading).
 */
function listNew(
  readings: readonly Reading[],
  from: number,
  index: Map<string, number>,
  added: string[],
): void {
  const fresh = new Set<string>();
  for (let k = from; k < readings.length; k++) {
    const id = readings[k]!.sensor;
    if (!index.has(id)) fresh.add(id);
  }
  for (const id of [...fresh].sort()) {
    index.set(id, index.size);
    added.push(id);
  }
}

function encodeRecord(rec: OpenRecord, index: Map<string, number>, added: string[]): Buffer {
  const readings = rec.readings;
  let t0 = Infinity;
  for (let k = 0; k < readings.length; k++) {
    const ts = Math.round(readings[k]!.ts);
    if (ts < t0) t0 = ts;
  }
  if (t0 === Infinity) t0 = 0;
  at = 0;
  room(64);
  putAscii('{"seq":');
  putInt(rec.seq);
  putAscii(',"t0":');
  putInt(t0);
  putAscii(',"r":[');
  for (let k = 0; k < readings.length; k++) {
    const r = readings[k]!;
    let i = index.get(r.sensor);
    if (i === undefined) {
      listNew(readings, k, index, added);
      i = index.get(r.sensor)!;
    }
    room(READING_ROOM);
    if (k > 0) scratch[at++] = 44; // ','
    scratch[at++] = 91; // '['
    putInt(i);
    scratch[at++] = 44;
    putInt(Math.round(r.ts) - t0);
    scratch[at++] = 44;
    putValue(r.value);
    if (r.quality !== 'good') {
      putAscii(',"');
      putAscii(r.quality);
      scratch[at++] = 34; // '"'
    }
    scratch[at++] = 93; // ']'
  }
  putAscii(']}');
  return Buffer.from(scratch.subarray(0, at));
}

/**
 * A notice record's entry of `recs` (DESIGN.md §3): an empty `r`, so a consumer that ignores
 * notices still decodes it, and `gap`: seqs from..to (inclusive) will never come, why, and how
 * many readings they held (null when unknown). `t0` is when the notice was made.
 */
export function encodeNotice(rec: OpenRecord): string {
  const n = rec.notice;
  if (n === undefined) throw new RangeError(`record seq ${rec.seq} is not a notice`);
  const t0 = Math.round(rec.t0 ?? 0);
  return `{"seq":${rec.seq},"t0":${t0},"r":[],"gap":{"from":${n.from},"to":${n.to},"why":"${n.why}","readings":${n.readings ?? 'null'}}}`;
}

function noticeBytes(rec: OpenRecord): Buffer {
  return Buffer.from(encodeNotice(rec), 'utf8');
}

/** The last compression of a prefix of the open message that fitted. */
interface Fit {
  count: number;
  plain: number;
  payload: Buffer | null;
}

/** Builds messages one record at a time; `add` returns the message it closed, if any. */
export class MessagePacker {
  private deflateRuns = 0;
  private readonly head: string;
  private readonly fixedBytes: number;
  private readonly compressed: boolean;
  private index = new Map<string, number>();
  private ids: string[] = [];
  private idsBytes = 0;
  private recs: Buffer[] = [];
  private recsBytes = 0;
  private records: OpenRecord[] = [];
  /** Per record of the open message: ids listed and plain message size with it as the last one. */
  private ends: { ids: number; plain: number }[] = [];
  private seqs: number[] = [];
  private readings = 0;
  private fit: Fit = { count: 0, plain: 0, payload: null };
  private ratio = FIRST_RATIO;

  constructor(
    gatewayId: string,
    private readonly maxPayloadBytes: number,
    compression: Compression = 'none',
  ) {
    this.head = `{"v":1,"gw":${JSON.stringify(gatewayId)},"ids":[`;
    this.fixedBytes = Buffer.byteLength(this.head) + '],"recs":[]}'.length;
    this.compressed = compression === 'deflate';
  }

  /** How many times a payload was compressed (efficiency figure for tests and the bench). */
  get compressions(): number {
    return this.deflateRuns;
  }

  /** Records held in the open (not yet closed) message. */
  get pendingSeqs(): readonly number[] {
    return this.seqs;
  }

  /**
   * Adds a record. If it does not fit in the open message, that message is closed and returned,
   * and the record (with, when compressed, any others that did not fit) starts the next one. A
   * record too large even alone still gets a message of its own (the caller sees
   * `payload.length > maxPayloadBytes` and reports it).
   */
  add(rec: OpenRecord): PackedMessage | null {
    if (this.compressed) {
      this.append(rec);
      const plain = this.plainBytes();
      const estimate = (this.fit.payload?.length ?? 0) + (plain - this.fit.plain) * this.ratio;
      if (estimate < this.maxPayloadBytes * CHECK_AT && plain <= MAX_INFLATED_BYTES) return null;
      return this.settle(false);
    }
    const added: string[] = [];
    const json = rec.notice === undefined ? encodeRecord(rec, this.index, added) : noticeBytes(rec);
    if (this.seqs.length > 0 && this.sizeWith(json, added) > this.maxPayloadBytes) {
      const closed = this.flush();
      this.add(rec);
      return closed;
    }
    this.push(rec, json, added);
    return null;
  }

  /**
   * Closes the open message (null when empty). When compressed, records that do not fit in it stay
   * open: flushAll closes them all.
   */
  flush(): PackedMessage | null {
    if (this.seqs.length === 0) return null;
    if (this.compressed) return this.settle(true);
    const msg = this.message(this.seqs.length, this.json(this.seqs.length));
    this.reset();
    return msg;
  }

  /** Closes every open record into messages. */
  flushAll(): PackedMessage[] {
    const out: PackedMessage[] = [];
    for (let m = this.flush(); m !== null; m = this.flush()) out.push(m);
    return out;
  }

  /** Drops the open message (after a disconnect its records are pulled again). */
  reset(): void {
    this.index = new Map();
    this.ids = [];
    this.idsBytes = 0;
    this.recs = [];
    this.recsBytes = 0;
    this.records = [];
    this.ends = [];
    this.seqs = [];
    this.readings = 0;
    this.fit = { count: 0, plain: 0, payload: null };
  }

  private append(rec: OpenRecord): void {
    const added: string[] = [];
    this.push(rec, rec.notice === undefined ? encodeRecord(rec, this.index, added) : noticeBytes(rec), added);
  }

  private push(rec: OpenRecord, json: Buffer, added: readonly string[]): void {
    for (const id of added) {
      const q = JSON.stringify(id);
      this.idsBytes += Buffer.byteLength(q) + (this.ids.length > 0 ? 1 : 0);
      this.ids.push(q);
    }
    this.recsBytes += json.length + (this.recs.length > 0 ? 1 : 0);
    this.recs.push(json);
    this.seqs.push(rec.seq);
    this.readings += rec.readings.length;
    if (this.compressed) {
      this.records.push(rec);
      this.ends.push({ ids: this.ids.length, plain: this.plainBytes() });
    }
  }

  private plainBytes(): number {
    return this.fixedBytes + this.idsBytes + this.recsBytes;
  }

  /** The plain JSON of the first `count` records of the open message (it lists only their ids). */
  private json(count: number): Buffer {
    const ids = this.ends[count - 1]?.ids ?? this.ids.length;
    const idList = count === this.seqs.length ? this.ids : this.ids.slice(0, ids);
    const recs = count === this.seqs.length ? this.recs : this.recs.slice(0, count);
    const head = Buffer.from(`${this.head}${idList.join(',')}],"recs":[`, 'utf8');
    let size = head.length + Math.max(0, recs.length - 1) + 2;
    for (const r of recs) size += r.length;
    const out = Buffer.allocUnsafe(size);
    let p = head.copy(out, 0);
    for (let i = 0; i < recs.length; i++) {
      if (i > 0) out[p++] = 44; // ','
      p += recs[i]!.copy(out, p);
    }
    out[p++] = 93; // ']'
    out[p++] = 125; // '}'
    if (p !== size) throw new Error(`wire: message of ${p} bytes where ${size} were counted`);
    return out;
  }

  private compress(count: number): Buffer {
    this.deflateRuns++;
    return deflatePayload(this.json(count));
  }

  private fits(payload: Buffer, count: number): boolean {
    return payload.length <= this.maxPayloadBytes && this.ends[count - 1]!.plain <= MAX_INFLATED_BYTES;
  }

  /**
   * Compresses the open message. If it fits and is full enough (or `close`), it is closed and
   * returned. If not, the largest prefix that fits is found (interpolating with the measured
   * ratio, usually in one more compression), closed and returned, and the rest carried over.
   */
  private settle(close: boolean): PackedMessage | null {
    const n = this.seqs.length;
    let payload = this.fit.count === n && this.fit.payload !== null ? this.fit.payload : this.compress(n);
    const plain = this.ends[n - 1]!.plain;
    if (this.fits(payload, n)) {
      this.ratio = payload.length / plain;
      this.fit = { count: n, plain, payload };
      if (close || payload.length >= this.maxPayloadBytes * FULL_AT) return this.close(n, payload);
      return null;
    }
    // Too large: search (fit.count, n) for the largest prefix that fits.
    let lo = this.fit.count;
    let loPayload = this.fit.payload;
    let hi = n;
    let hiRatio = payload.length / plain;
    let last = n; // the prefix `payload` holds
    while (hi - lo > 1) {
      const aim = Math.min(MAX_INFLATED_BYTES, (this.maxPayloadBytes * CHECK_AT) / hiRatio);
      let k = hi - 1;
      while (k > lo + 1 && this.ends[k - 1]!.plain > aim) k--;
      payload = this.compress(k);
      last = k;
      if (this.fits(payload, k)) {
        lo = k;
        loPayload = payload;
        break; // close enough: the aim was just under the limit
      }
      hi = k;
      hiRatio = payload.length / this.ends[k - 1]!.plain;
    }
    if (lo === 0 || loPayload === null) {
      // Even the first record alone is too large: it gets a message of its own.
      lo = 1;
      loPayload = last === 1 ? payload : this.compress(1);
    } else {
      this.ratio = loPayload.length / this.ends[lo - 1]!.plain;
    }
    return this.close(lo, loPayload);
  }

  /** Closes the first `count` records as `payload`; the rest start the next message, re-indexed. */
  private close(count: number, payload: Buffer): PackedMessage {
    const msg = this.message(count, payload);
    const carried = this.records.slice(count);
    this.reset();
    for (const rec of carried) this.append(rec);
    return msg;
  }

  private message(count: number, payload: Buffer): PackedMessage {
    const seqs = count === this.seqs.length ? this.seqs : this.seqs.slice(0, count);
    let readings = this.readings;
    if (count < this.seqs.length) {
      readings = 0;
      for (let i = 0; i < count; i++) readings += this.records[i]!.readings.length;
    }
    return { payload, seqs, readings, compressed: this.compressed };
  }

  private sizeWith(json: Buffer, added: readonly string[]): number {
    let ids = this.idsBytes;
    let n = this.ids.length;
    for (const id of added) ids += Buffer.byteLength(JSON.stringify(id)) + (n++ > 0 ? 1 : 0);
    return this.fixedBytes + ids + this.recsBytes + json.length + (this.recs.length > 0 ? 1 : 0);
  }
}

/** One message holding exactly these records (DESIGN.md §3), plain. */
export function encodeMessage(gatewayId: string, records: readonly OpenRecord[]): string {
  const packer = new MessagePacker(gatewayId, Infinity);
  for (const rec of records) packer.add(rec);
  return (
    packer.flush()?.payload.toString('utf8') ?? `{"v":1,"gw":${JSON.stringify(gatewayId)},"ids":[],"recs":[]}`
  );
}

/**
 * Greedily packs whole records, in the given (seq) order, into messages of at most
 * `maxPayloadBytes` (compressed bytes with deflate).
 */
export function packMessages(
  gatewayId: string,
  records: readonly OpenRecord[],
  maxPayloadBytes: number,
  compression: Compression = 'none',
): PackedMessage[] {
  const packer = new MessagePacker(gatewayId, maxPayloadBytes, compression);
  const out: PackedMessage[] = [];
  for (const rec of records) {
    const closed = packer.add(rec);
    if (closed) out.push(closed);
  }
  out.push(...packer.flushAll());
  return out;
}
