// The plain header of a stored record: what the queue reads without the key (count, t0, which
// format), and the error every record that does not open is reported with. The layouts are
// described in sealer.ts, which writes them.

import type { SealedRecord } from '../types.js';
import { EdgegwError, Exit } from '../errors.js';
import { ByteReader } from './bytes.js';
import { COMPACT_AT_T0_FORM, COMPACT_FORM, INDEXED_FORM, type BodyForm } from './codec.js';

export const SEALED_FORMAT_VERSION = 1;
export const NOTICE_FORMAT_VERSION = 2;
/** Readings whose sensors are indices into the queue's sensor-id dictionary. */
export const INDEXED_FORMAT_VERSION = 3;
/** Compact records: the header's first byte has this bit (and the versions above are below it). */
export const COMPACT_FORMAT_VERSION = 4;
export const COMPACT_MARK = 0x40;
export const COMPACT_FIRST_AT_T0 = 0x80;
export const COMPACT_COUNT_BITS = 0x3f;
export const STORED_NONCE_BYTES = 8;
export const TAG_BYTES = 16;

/** A sealed record failed authentication (altered, moved, replayed or damaged). */
export class TamperedRecordError extends EdgegwError {
  readonly seq: number;

  constructor(seq: number, options?: ErrorOptions) {
    super('EDGEGW_E_QUEUE_TAMPERED', `queue record seq ${seq} failed authentication`, Exit.FAILURE, options);
    this.name = 'TamperedRecordError';
    this.seq = seq;
  }
}

export interface ParsedHeader {
  readonly version: number;
  readonly notice: boolean;
  readonly count: number;
  readonly t0: number;
  /** Offset of the stored nonce, or of the ciphertext in a compact record (= header length). */
  readonly nonceAt: number;
  /** How the body is laid out (compact records). */
  readonly form: BodyForm;
}

export function parseHeader(seq: number, bytes: Uint8Array): ParsedHeader {
  try {
    const r = new ByteReader(bytes);
    const first = r.byte();
    if ((first & COMPACT_MARK) !== 0) {
      let count = first & COMPACT_COUNT_BITS;
      if (count === 0) {
        count = r.uvarint();
        if (count <= COMPACT_COUNT_BITS) throw new RangeError('count written the long way');
      }
      const t0 = r.uvarint();
      if (r.remaining < TAG_BYTES) throw new RangeError('truncated record');
      const form = (first & COMPACT_FIRST_AT_T0) !== 0 ? COMPACT_AT_T0_FORM : COMPACT_FORM;
      return { version: COMPACT_FORMAT_VERSION, notice: false, count, t0, nonceAt: r.pos, form };
    }
    const version = first;
    if (
      version !== SEALED_FORMAT_VERSION &&
      version !== NOTICE_FORMAT_VERSION &&
      version !== INDEXED_FORMAT_VERSION
    ) {
      throw new RangeError('unknown format version');
    }
    const notice = version === NOTICE_FORMAT_VERSION;
    const count = r.uvarint();
    const t0 = r.uvarint();
    if (notice && count !== 0) throw new RangeError('a notice holds no readings');
    if (r.remaining < STORED_NONCE_BYTES + TAG_BYTES) throw new RangeError('truncated record');
    return { version, notice, count, t0, nonceAt: r.pos, form: INDEXED_FORM };
  } catch (err) {
    throw new TamperedRecordError(seq, { cause: err });
  }
}

/** Rebuilds a SealedRecord from a stored value without the key; throws TamperedRecordError if malformed. */
export function parseSealedHeader(seq: number, bytes: Uint8Array): SealedRecord {
  const h = parseHeader(seq, bytes);
  return { seq, count: h.count, t0: h.t0, bytes };
}

/** A stored value's record format (1-4) from its first byte, without the key; NaN if none. */
export function recordFormat(bytes: Uint8Array): number {
  const first = bytes[0];
  if (first === undefined) return NaN;
  return (first & COMPACT_MARK) !== 0 ? COMPACT_FORMAT_VERSION : first;
}

/** Whether a stored value is a notice record, from its plain header (without the key). */
export function isNoticeValue(bytes: Uint8Array): boolean {
  return bytes[0] === NOTICE_FORMAT_VERSION;
}
