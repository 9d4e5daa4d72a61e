// One MQTT payload of the wire format (docs/wire-format.md) → rows and notices. Self-contained on
// purpose: node:zlib and JSON only, so other Node programs (and the Lambda handlers) can import it
// without the gateway's runtime. Validation is strict: a payload that is not exactly the format is
// refused with an error that says where, never half-decoded.

import { inflateSync } from 'node:zlib';
import { DecodeError } from './errors.js';

/** The highest wire-format version this decoder reads. */
export const SUPPORTED_VERSION = 1;

/** What a gap notice explains (docs/wire-format.md, "Notices"). */
export type GapWhy = 'dropped' | 'quarantined' | 'write-failed' | 'skipped';
export const GAP_WHYS: readonly GapWhy[] = ['dropped', 'quarantined', 'write-failed', 'skipped'];

/** One reading, flat: what a sink stores. `ts` is ms since the epoch. */
export interface Row {
  gw: string;
  seq: number;
  sensor: string;
  ts: number;
  value: number | boolean | null;
  quality: string;
}

/** A notice entry: its own `seq` (in the data's seq space) explains seqs `from`..`to` inclusive. */
export interface Notice {
  gw: string;
  seq: number;
  t0: number;
  from: number;
  to: number;
  why: GapWhy;
  readings: number | null;
}

export interface DecodedMessage {
  gw: string;
  v: number;
  /** Every seq of the message (data and notices), in message order. */
  seqs: number[];
  rows: Row[];
  notices: Notice[];
}

const ZLIB_CMF_DEFLATE = 8;
// A 128 KB payload of JSON inflates to well under this; the cap stops a zlib bomb.
const MAX_INFLATED_BYTES = 64 * 1024 * 1024;
const QUALITY = /^[a-z][a-z0-9-]{0,31}$/;

/** True when the first two bytes are a valid zlib (RFC 1950) header. */
export function isZlibHeader(b: Uint8Array): boolean {
  if (b.length < 2) return false;
  const cmf = b[0]!;
  const flg = b[1]!;
  return (cmf & 0x0f) === ZLIB_CMF_DEFLATE && (cmf * 256 + flg) % 31 === 0;
}

/** The plain JSON text of a payload: as is when it starts with `{`, inflated when it is a zlib stream. */
export function payloadText(payload: Uint8Array): string {
  if (payload.length === 0) throw new DecodeError('framing', 'empty payload');
  if (payload[0] === 0x7b) return Buffer.from(payload).toString('utf8');
  if (isZlibHeader(payload)) {
    let plain: Buffer;
    try {
      plain = inflateSync(payload, { maxOutputLength: MAX_INFLATED_BYTES });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new DecodeError('framing', `zlib stream does not inflate (${code})`);
    }
    if (plain[0] !== 0x7b) throw new DecodeError('framing', 'inflated payload is not a JSON object');
    return plain.toString('utf8');
  }
  const first = payload[0]!.toString(16).padStart(2, '0');
  throw new DecodeError(
    'framing',
    `payload starts with byte 0x${first}: neither JSON ("{") nor a zlib stream`,
  );
}

/** Decodes one MQTT payload (plain JSON or zlib-compressed JSON). */
export function decodePayload(payload: Uint8Array | string): DecodedMessage {
  const text = typeof payload === 'string' ? payload : payloadText(payload);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    // JSON.parse's message may quote the payload: not shown.
    throw new DecodeError('json', 'payload is not valid JSON');
  }
  return decodeMessage(doc);
}

/** Decodes an already parsed message object (an IoT Rule's `SELECT *` delivers this). */
export function decodeMessage(doc: unknown): DecodedMessage {
  const m = obj(doc, 'message');
  const v = m['v'];
  if (!isCount(v) || v < 1) throw shape('v', 'must be an integer >= 1');
  if (v > SUPPORTED_VERSION) {
    throw new DecodeError(
      'version',
      `wire format v${v} is newer than this decoder reads (v1..v${SUPPORTED_VERSION}): upgrade the consumer`,
    );
  }
  const gw = m['gw'];
  if (typeof gw !== 'string' || gw.length === 0) throw shape('gw', 'must be a non-empty string');
  const ids = arr(m['ids'], 'ids');
  for (const [i, id] of ids.entries()) {
    if (typeof id !== 'string' || id.length === 0) throw shape(`ids[${i}]`, 'must be a non-empty string');
  }
  if (new Set(ids).size !== ids.length) throw shape('ids', 'lists a sensor id twice');
  const out: DecodedMessage = { gw, v, seqs: [], rows: [], notices: [] };
  let prev = 0;
  for (const [k, recDoc] of arr(m['recs'], 'recs').entries()) {
    const at = `recs[${k}]`;
    const rec = obj(recDoc, at);
    const seq = rec['seq'];
    const t0 = rec['t0'];
    if (!isCount(seq) || seq < 1) throw shape(`${at}.seq`, 'must be an integer >= 1');
    if (seq <= prev) throw shape(`${at}.seq`, `${seq} is not above the previous seq ${prev}`);
    prev = seq;
    if (!isCount(t0)) throw shape(`${at}.t0`, 'must be an integer >= 0 (ms since the epoch)');
    out.seqs.push(seq);
    const r = arr(rec['r'], `${at}.r`);
    if (rec['gap'] !== undefined) {
      if (r.length !== 0) throw shape(`${at}.r`, 'must be empty in a notice');
      out.notices.push(notice(gw, seq, t0, rec['gap'], `${at}.gap`));
      continue;
    }
    for (const [j, rd] of r.entries()) out.rows.push(row(gw, seq, t0, ids as string[], rd, `${at}.r[${j}]`));
  }
  return out;
}

function row(gw: string, seq: number, t0: number, ids: string[], doc: unknown, at: string): Row {
  const r = arr(doc, at);
  if (r.length !== 3 && r.length !== 4) throw shape(at, 'must be [i, dt, value] or [i, dt, value, quality]');
  const [i, dt, value, quality] = r;
  if (!isCount(i) || i >= ids.length) throw shape(`${at}[0]`, `must index ids (0..${ids.length - 1})`);
  if (!isCount(dt)) throw shape(`${at}[1]`, 'must be an integer >= 0 (ms after t0)');
  if (!(typeof value === 'number' || typeof value === 'boolean' || value === null)) {
    throw shape(`${at}[2]`, 'must be a number, a boolean or null');
  }
  if (r.length === 4 && (typeof quality !== 'string' || !QUALITY.test(quality) || quality === 'good')) {
    // "good" is written by leaving the 4th element out; a present one names another quality.
    throw shape(`${at}[3]`, 'must be a quality other than "good" (lowercase word)');
  }
  return {
    gw,
    seq,
    sensor: ids[i]!,
    ts: t0 + dt,
    value,
    quality: r.length === 4 ? (quality as string) : 'good',
  };
}

function notice(gw: string, seq: number, t0: number, doc: unknown, at: string): Notice {
  const g = obj(doc, at);
  const { from, to, why, readings } = g;
  if (!isCount(from) || from < 1) throw shape(`${at}.from`, 'must be an integer >= 1');
  if (!isCount(to) || to < from) throw shape(`${at}.to`, 'must be an integer >= from');
  if (seq >= from && seq <= to)
    throw shape(at, `the notice's own seq ${seq} lies inside the range it explains`);
  if (typeof why !== 'string' || !(GAP_WHYS as readonly string[]).includes(why)) {
    throw shape(`${at}.why`, `must be one of ${GAP_WHYS.join(', ')}`);
  }
  if (!(readings === null || isCount(readings)))
    throw shape(`${at}.readings`, 'must be an integer >= 0 or null');
  return { gw, seq, t0, from, to, why: why as GapWhy, readings };
}

function isCount(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

function obj(x: unknown, at: string): Record<string, unknown> {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) throw shape(at, 'must be a JSON object');
  return x as Record<string, unknown>;
}

function arr(x: unknown, at: string): unknown[] {
  if (!Array.isArray(x)) throw shape(at, 'must be an array');
  return x;
}

function shape(at: string, what: string): DecodeError {
  return new DecodeError('shape', `${at} ${what}`);
}
