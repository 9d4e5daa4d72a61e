// The MQTT payload (DESIGN.md §3): one message holds whole records in seq order, lists each sensor
// id once, and stands alone. Packing is incremental: each record is stringified once, and a
// message is assembled from fragments when it is full, never re-stringified per added record.

import type { OpenRecord, Reading } from '../types.js';

export interface PackedMessage {
  payload: Buffer;
  seqs: number[];
  readings: number;
}

/** `[i,dt,value]` plus `,"quality"` when not good; values go through JSON (already at sensor precision). */
function encodeReading(i: number, dt: number, r: Reading): string {
  // JSON has no NaN/Infinity: a non-finite number is written as null so the message stays valid.
  const v = typeof r.value === 'number' && !Number.isFinite(r.value) ? 'null' : JSON.stringify(r.value);
  return r.quality === 'good' ? `[${i},${dt},${v}]` : `[${i},${dt},${v},"${r.quality}"]`;
}

/** One record's JSON, with sensor indices from `index` (new ids are appended to it and to `added`). */
function encodeRecord(rec: OpenRecord, index: Map<string, number>, added: string[]): string {
  let t0 = Infinity;
  for (const r of rec.readings) t0 = Math.min(t0, Math.round(r.ts));
  if (t0 === Infinity) t0 = 0;
  const parts: string[] = [];
  for (const r of rec.readings) {
    let i = index.get(r.sensor);
    if (i === undefined) {
      i = index.size;
      index.set(r.sensor, i);
      added.push(r.sensor);
    }
    parts.push(encodeReading(i, Math.round(r.ts) - t0, r));
  }
  return `{"seq":${rec.seq},"t0":${t0},"r":[${parts.join(',')}]}`;
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

/** Builds messages one record at a time; `add` returns the message it closed, if any. */
export class MessagePacker {
  private readonly head: string;
  private readonly fixedBytes: number;
  private index = new Map<string, number>();
  private ids: string[] = [];
  private idsBytes = 0;
  private recs: string[] = [];
  private recsBytes = 0;
  private seqs: number[] = [];
  private readings = 0;

  constructor(
    gatewayId: string,
    private readonly maxPayloadBytes: number,
  ) {
    this.head = `{"v":1,"gw":${JSON.stringify(gatewayId)},"ids":[`;
    this.fixedBytes = Buffer.byteLength(this.head) + '],"recs":[]}'.length;
  }

  /** Records held in the open (not yet closed) message. */
  get pendingSeqs(): readonly number[] {
    return this.seqs;
  }

  /**
   * Adds a record. If it does not fit in the open message, that message is closed and returned,
   * and the record starts the next one. A record too large even alone still gets a message of its
   * own (the caller sees `payload.length > maxPayloadBytes` and reports it).
   */
  add(rec: OpenRecord): PackedMessage | null {
    const added: string[] = [];
    const json = rec.notice === undefined ? encodeRecord(rec, this.index, added) : encodeNotice(rec);
    if (this.seqs.length > 0 && this.sizeWith(json, added) > this.maxPayloadBytes) {
      const closed = this.flush();
      this.add(rec);
      return closed;
    }
    for (const id of added) {
      const q = JSON.stringify(id);
      this.idsBytes += Buffer.byteLength(q) + (this.ids.length > 0 ? 1 : 0);
      this.ids.push(q);
    }
    this.recsBytes += Buffer.byteLength(json) + (this.recs.length > 0 ? 1 : 0);
    this.recs.push(json);
    this.seqs.push(rec.seq);
    this.readings += rec.readings.length;
    return null;
  }

  /** Closes the open message (null when empty). */
  flush(): PackedMessage | null {
    if (this.seqs.length === 0) return null;
    const payload = Buffer.from(
      `${this.head}${this.ids.join(',')}],"recs":[${this.recs.join(',')}]}`,
      'utf8',
    );
    const msg: PackedMessage = { payload, seqs: this.seqs, readings: this.readings };
    this.reset();
    return msg;
  }

  /** Drops the open message (after a disconnect its records are pulled again). */
  reset(): void {
    this.index = new Map();
    this.ids = [];
    this.idsBytes = 0;
    this.recs = [];
    this.recsBytes = 0;
    this.seqs = [];
    this.readings = 0;
  }

  private sizeWith(json: string, added: readonly string[]): number {
    let ids = this.idsBytes;
    let n = this.ids.length;
    for (const id of added) ids += Buffer.byteLength(JSON.stringify(id)) + (n++ > 0 ? 1 : 0);
    return this.fixedBytes + ids + this.recsBytes + Buffer.byteLength(json) + (this.recs.length > 0 ? 1 : 0);
  }
}

/** One message holding exactly these records (DESIGN.md §3). */
export function encodeMessage(gatewayId: string, records: readonly OpenRecord[]): string {
  const packer = new MessagePacker(gatewayId, Infinity);
  for (const rec of records) packer.add(rec);
  return (
    packer.flush()?.payload.toString('utf8') ?? `{"v":1,"gw":${JSON.stringify(gatewayId)},"ids":[],"recs":[]}`
  );
}

/** Greedily packs whole records, in the given (seq) order, into messages of at most `maxPayloadBytes`. */
export function packMessages(
  gatewayId: string,
  records: readonly OpenRecord[],
  maxPayloadBytes: number,
): PackedMessage[] {
  const packer = new MessagePacker(gatewayId, maxPayloadBytes);
  const out: PackedMessage[] = [];
  for (const rec of records) {
    const closed = packer.add(rec);
    if (closed) out.push(closed);
  }
  const last = packer.flush();
  if (last) out.push(last);
  return out;
}
