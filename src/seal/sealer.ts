// Record sealing with XChaCha20-Poly1305-IETF (libsodium). The stored value is
//
//   header  = version byte, count uvarint, t0 uvarint       (plain: the queue needs them keyless)
//   nonce   = 8 random bytes                                 (stored)
//   sealed  = ciphertext of the codec body + 16-byte tag
//
// The 24-byte XChaCha nonce is the 8 stored random bytes, then seq (8 bytes big-endian), then 8
// zero bytes. Within one queue, seq is never reused; should it ever be (a database deleted while
// the key is kept, or an unsynced write lost in a power cut), the 64 random bits still keep nonces
// distinct. Storing 8 bytes instead of 24 saves 16 bytes per record (DESIGN.md §7).
//
// Associated data = seq (8 bytes big-endian) + the header, so a record moved to another seq,
// replayed, or with an altered count or t0 fails to open.
//
// A notice record (a gap in the stream explained, DESIGN.md §3) has the version byte
// NOTICE_FORMAT_VERSION, count 0 and t0 = when it was made; its sealed body is notice-codec.ts.
// The version byte is in the associated data, so a record cannot be turned into a notice.
//
// Version 1 records carry their sensor ids in a table of their own; version 3 (INDEXED) records
// carry indices into the queue's sensor-id dictionary (sensor-ids.ts); version 4 (COMPACT) records
// too, with a shorter layout (what new records are sealed in once the queue has a nonce salt):
//
//   header  = one byte: bit 6 set (versions 1-3 are below 0x40), bit 7 when the first reading is
//             at t0 (codec.ts: its delta is left out), count in bits 0-5 (1-63; 0: a count
//             uvarint follows); then t0 uvarint
//   sealed  = ciphertext of the compact body (codec.ts) + 16-byte tag
//
// with no stored nonce: the nonce is the queue's salt for the record's seq (nonce-salts.ts, 16
// bytes), then seq (8 bytes big-endian). Associated data as for every record (seq + header).
//
// The dictionary's entries are sealed here too:
//
//   entry   = ID_ENTRY_VERSION byte, key id (16 bytes, which key sealed it), nonce (24 random
//             bytes), ciphertext of the UTF-8 id + 16-byte tag
//
// with associated data 0xFF + index (8 bytes big-endian) + version + key id: an entry moved to
// another index, or claiming another key, fails to open, and no record's associated data (seq <
// 2^53: first byte < 0x20) can ever equal an entry's.
//
// A sealed file (the fleet overlay, issue 11) has the entry's layout with SEALED_FILE_VERSION and
// associated data 0xFE + version + key id + the file's purpose (UTF-8): it opens only as the file
// it was sealed for, and never as a record or an entry.

import { randomFillSync } from 'node:crypto';
import sodium from 'libsodium-wrappers';
import type { GapNotice, OpenRecord, Reading, SealedRecord } from '../types.js';
import { EdgegwError, Exit } from '../errors.js';
import { ByteWriter } from './bytes.js';
import {
  baseTime,
  decodeBody,
  decodeIndexedBody,
  encodableReadings,
  encodableTs,
  encodeBody,
  encodeIndexedBody,
  indicesOf,
  compactForm,
} from './codec.js';
import { decodeNotice, encodeNotice } from './notice-codec.js';
import { SALT_BYTES } from './nonce-salts.js';
import {
  COMPACT_COUNT_BITS,
  COMPACT_FIRST_AT_T0,
  COMPACT_MARK,
  INDEXED_FORMAT_VERSION,
  NOTICE_FORMAT_VERSION,
  SEALED_FORMAT_VERSION,
  STORED_NONCE_BYTES,
  TAG_BYTES,
  TamperedRecordError,
  parseHeader,
  type ParsedHeader,
} from './record-header.js';

export {
  COMPACT_FORMAT_VERSION,
  INDEXED_FORMAT_VERSION,
  NOTICE_FORMAT_VERSION,
  SEALED_FORMAT_VERSION,
  TamperedRecordError,
  isNoticeValue,
  parseSealedHeader,
  recordFormat,
} from './record-header.js';

export const ID_ENTRY_VERSION = 1;
const KEY_ID_BYTES = 16;
const ENTRY_NONCE_BYTES = 24;
const ENTRY_HEADER_BYTES = 1 + KEY_ID_BYTES;
const ENTRY_AD_MARK = 0xff;
export const SEALED_FILE_VERSION = 1;
const FILE_AD_MARK = 0xfe;

/** Opens a dictionary index to its sensor id: undefined when there is no entry (throws when damaged). */
export type IdLookup = (index: number) => string | undefined;

/** The nonce salt of a seq (nonce-salts.ts), or undefined when the queue knows none for it. */
export type SaltLookup = (seq: number) => Uint8Array | undefined;

/** A sensor-id dictionary entry failed authentication (or names no held key). */
export class DamagedIdError extends EdgegwError {
  readonly index: number;

  constructor(index: number, why: string, options?: ErrorOptions) {
    super('EDGEGW_E_QUEUE_TAMPERED', `sensor id entry ${index} ${why}`, Exit.FAILURE, options);
    this.name = 'DamagedIdError';
    this.index = index;
  }
}

/** The key id (hex) a dictionary entry says sealed it, or null when it is malformed. */
export function entryKeyId(entry: Uint8Array): string | null {
  if (entry.length < ENTRY_HEADER_BYTES + ENTRY_NONCE_BYTES + TAG_BYTES || entry[0] !== ID_ENTRY_VERSION) {
    return null;
  }
  return Buffer.from(entry.subarray(1, ENTRY_HEADER_BYTES)).toString('hex');
}

/** The key id (hex) a sealed file says sealed it, or null when it is malformed. */
export function sealedFileKeyId(sealed: Uint8Array): string | null {
  if (
    sealed.length < ENTRY_HEADER_BYTES + ENTRY_NONCE_BYTES + TAG_BYTES ||
    sealed[0] !== SEALED_FILE_VERSION
  ) {
    return null;
  }
  return Buffer.from(sealed.subarray(1, ENTRY_HEADER_BYTES)).toString('hex');
}

/** Random nonce bytes come from node:crypto in blocks: libsodium's randombytes_buf is slow per call. */
class NoncePool {
  private readonly pool = new Uint8Array(4096);
  private at = this.pool.length;

  take(n: number): Uint8Array {
    if (this.at + n > this.pool.length) {
      randomFillSync(this.pool);
      this.at = 0;
    }
    const out = this.pool.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
}

/**
 * What `open` gives back for a record `seal(seq, given)` sealed, without the round trip: the
 * uplink publishes a record that never left memory from this (write-behind, issue 9). Beside
 * seal() on purpose: it repeats what the codec changes (timestamps made encodable, a non-finite
 * value carried as 0, quality bad), and a test checks the two against each other.
 */
export function openedForm(seq: number, given: readonly Reading[]): OpenRecord {
  // The usual case, every timestamp encodable and every value finite (one pass over them): the
  // readings themselves (they are never changed), not a copy.
  let fine = true;
  for (let k = 0; k < given.length; k++) {
    const r = given[k]!;
    if (!encodableTs(r.ts) || (typeof r.value === 'number' && !Number.isFinite(r.value))) {
      fine = false;
      break;
    }
  }
  if (fine) return { seq, readings: given };
  const readings = encodableReadings(given).map((r): Reading =>
    typeof r.value === 'number' && !Number.isFinite(r.value)
      ? { sensor: r.sensor, ts: r.ts, value: 0, quality: 'bad' }
      : { sensor: r.sensor, ts: r.ts, value: r.value, quality: r.quality },
  );
  return { seq, readings };
}

export class Sealer {
  private readonly nonces = new NoncePool();
  private readonly nonce = new Uint8Array(24);
  private readonly nonceView = new DataView(this.nonce.buffer);

  private constructor(private readonly key: Uint8Array) {}

  /** The caller may wipe `key` afterwards: the sealer keeps its own copy. */
  static async create(key: Uint8Array): Promise<Sealer> {
    await sodium.ready;
    if (key.length !== sodium.crypto_aead_xchacha20poly1305_ietf_KEYBYTES) {
      throw new EdgegwError('EDGEGW_E_KEY_READ', 'the queue key must be 32 bytes', Exit.CONFIG);
    }
    return new Sealer(Uint8Array.from(key));
  }

  /** A record of format 1, with its own id table (what builds before the dictionary wrote). */
  seal(seq: number, given: readonly Reading[]): SealedRecord {
    if (given.length === 0) throw new RangeError('a record holds at least one reading');
    const readings = encodableReadings(given);
    const t0 = baseTime(readings);
    return this.sealBody(seq, SEALED_FORMAT_VERSION, readings.length, t0, encodeBody(readings, t0));
  }

  /** A record of format 3: `indexOf` gives each sensor's dictionary index (sensor-ids.ts). */
  sealIndexed(seq: number, given: readonly Reading[], indexOf: (sensor: string) => number): SealedRecord {
    if (given.length === 0) throw new RangeError('a record holds at least one reading');
    const readings = encodableReadings(given);
    const t0 = baseTime(readings);
    const body = encodeIndexedBody(readings, t0, indexOf);
    return this.sealBody(seq, INDEXED_FORMAT_VERSION, readings.length, t0, body);
  }

  /**
   * A record of format 4 (compact): `indexOf` gives each sensor's dictionary index, and `salt` is
   * the queue's nonce salt for `seq` (nonce-salts.ts), which the record does not store.
   */
  sealCompact(
    seq: number,
    given: readonly Reading[],
    indexOf: (sensor: string) => number,
    salt: Uint8Array,
  ): SealedRecord {
    if (given.length === 0) throw new RangeError('a record holds at least one reading');
    if (salt.length !== SALT_BYTES) throw new RangeError('a nonce salt is 16 bytes');
    const readings = encodableReadings(given);
    const t0 = baseTime(readings);
    const form = compactForm(readings, t0);
    const body = encodeIndexedBody(readings, t0, indexOf, form);
    const count = readings.length;
    const w = new ByteWriter(16);
    w.byte(
      COMPACT_MARK | (form.firstAtT0 ? COMPACT_FIRST_AT_T0 : 0) | (count <= COMPACT_COUNT_BITS ? count : 0),
    );
    if (count > COMPACT_COUNT_BITS) w.uvarint(count);
    w.uvarint(t0);
    const header = w.finish();
    const cipher = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
      body,
      associatedData(seq, header),
      null,
      this.saltedNonce(seq, salt),
      this.key,
    );
    const bytes = new Uint8Array(header.length + cipher.length);
    bytes.set(header, 0);
    bytes.set(cipher, header.length);
    return { seq, count, t0, bytes };
  }

  /** Seals dictionary entry `index` (sensor id `id`) as sealed by the key with id `keyId` (hex). */
  sealId(index: number, id: string, keyId: string): Uint8Array {
    return this.sealEntry(ID_ENTRY_VERSION, keyId, new TextEncoder().encode(id), (h) => entryAd(index, h));
  }

  /** The sensor id of dictionary entry `index`; DamagedIdError when it does not authenticate. */
  openId(index: number, entry: Uint8Array): string {
    if (entryKeyId(entry) === null) throw new DamagedIdError(index, 'is malformed');
    try {
      const plain = this.openEntry(entry, (h) => entryAd(index, h));
      return new TextDecoder('utf-8', { fatal: true }).decode(plain);
    } catch (err) {
      throw new DamagedIdError(index, 'failed authentication', { cause: err });
    }
  }

  /** Seals a file's content for `purpose` as sealed by the key with id `keyId` (hex). */
  sealFile(purpose: string, plain: Uint8Array, keyId: string): Uint8Array {
    return this.sealEntry(SEALED_FILE_VERSION, keyId, plain, (h) => fileAd(purpose, h));
  }

  /** The content of a file sealed for `purpose`, or null when it does not authenticate. */
  openFile(purpose: string, sealed: Uint8Array): Uint8Array | null {
    if (sealedFileKeyId(sealed) === null) return null;
    try {
      return this.openEntry(sealed, (h) => fileAd(purpose, h));
    } catch {
      return null;
    }
  }

  /**
   * A small sealed item (a dictionary entry, a file): header (`version`, the key id), a random
   * nonce, then the XChaCha20-Poly1305 ciphertext; `ad` binds it to its place or purpose.
   */
  private sealEntry(
    version: number,
    keyId: string,
    plain: Uint8Array,
    ad: (header: Uint8Array) => Uint8Array,
  ): Uint8Array {
    const header = new Uint8Array(ENTRY_HEADER_BYTES);
    header[0] = version;
    header.set(Buffer.from(keyId, 'hex').subarray(0, KEY_ID_BYTES), 1);
    const nonce = Uint8Array.from(this.nonces.take(ENTRY_NONCE_BYTES));
    const cipher = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
      plain,
      ad(header),
      null,
      nonce,
      this.key,
    );
    const out = new Uint8Array(ENTRY_HEADER_BYTES + ENTRY_NONCE_BYTES + cipher.length);
    out.set(header, 0);
    out.set(nonce, ENTRY_HEADER_BYTES);
    out.set(cipher, ENTRY_HEADER_BYTES + ENTRY_NONCE_BYTES);
    return out;
  }

  /** The plaintext of a sealEntry item; throws when it does not authenticate. */
  private openEntry(entry: Uint8Array, ad: (header: Uint8Array) => Uint8Array): Uint8Array {
    return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
      null,
      entry.subarray(ENTRY_HEADER_BYTES + ENTRY_NONCE_BYTES),
      ad(entry.subarray(0, ENTRY_HEADER_BYTES)),
      entry.subarray(ENTRY_HEADER_BYTES, ENTRY_HEADER_BYTES + ENTRY_NONCE_BYTES),
      this.key,
    );
  }

  /** Seals a notice record made at `t0` (ms since the epoch); its count is 0. */
  sealNotice(seq: number, notice: GapNotice, t0: number): SealedRecord {
    const at = Number.isSafeInteger(t0) && t0 >= 0 ? t0 : 0;
    return this.sealBody(seq, NOTICE_FORMAT_VERSION, 0, at, encodeNotice(notice));
  }

  private sealBody(seq: number, version: number, count: number, t0: number, body: Uint8Array): SealedRecord {
    const w = new ByteWriter(24);
    w.byte(version);
    w.uvarint(count);
    w.uvarint(t0);
    const header = w.finish();
    const stored = this.nonces.take(STORED_NONCE_BYTES);
    const ad = associatedData(seq, header);
    const cipher = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
      body,
      ad,
      null,
      this.fullNonce(seq, stored),
      this.key,
    );

    const bytes = new Uint8Array(header.length + STORED_NONCE_BYTES + cipher.length);
    bytes.set(header, 0);
    bytes.set(stored, header.length);
    bytes.set(cipher, header.length + STORED_NONCE_BYTES);
    return { seq, count, t0, bytes };
  }

  /**
   * Authenticates and decodes; any failure is a TamperedRecordError (the bytes are not trusted).
   * A format-3 record needs `ids`, the queue's dictionary: an index without an entry there, or
   * whose entry fails authentication, fails the record the same way (it is quarantined).
   */
  open(rec: SealedRecord, ids?: IdLookup, salts?: SaltLookup): OpenRecord {
    const { seq } = rec;
    const { h, body } = this.decrypt(rec, salts);
    try {
      if (h.notice) return { seq, readings: [], notice: decodeNotice(body), t0: h.t0 };
      if (h.version === SEALED_FORMAT_VERSION) return { seq, readings: decodeBody(body, h.count, h.t0) };
      if (ids === undefined) throw new RangeError('no sensor-id dictionary to open the record with');
      const idOf = (i: number): string => {
        const id = ids(i);
        if (id === undefined) throw new RangeError(`no sensor-id entry ${i}`);
        return id;
      };
      return { seq, readings: decodeIndexedBody(body, h.count, h.t0, idOf, h.form) };
    } catch (err) {
      // Authentic but undecodable (an incompatible build), or its dictionary entry is missing or
      // damaged: not readable either way.
      throw new TamperedRecordError(seq, { cause: err });
    }
  }

  /** Whether this key authenticates the record (its readings are not decoded). */
  authenticates(rec: SealedRecord, salts?: SaltLookup): boolean {
    try {
      this.decrypt(rec, salts);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * The dictionary indices a format-3 or 4 record refers to (none for other formats), or null when
   * this key does not authenticate it or it does not decode. For repair (no index handed out twice).
   */
  indicesOf(rec: SealedRecord, salts?: SaltLookup): Set<number> | null {
    try {
      const { h, body } = this.decrypt(rec, salts);
      const indexed = h.version === INDEXED_FORMAT_VERSION || h.form.compact;
      return indexed ? indicesOf(body, h.count, h.t0, h.form) : new Set();
    } catch {
      return null;
    }
  }

  private decrypt(rec: SealedRecord, salts?: SaltLookup): { h: ParsedHeader; body: Uint8Array } {
    const { seq, bytes } = rec;
    const h = parseHeader(seq, bytes);
    const header = bytes.subarray(0, h.nonceAt);
    let nonce: Uint8Array;
    let cipher: Uint8Array;
    if (h.form.compact) {
      const salt = salts?.(seq);
      // No salt known for its seq (the queue's epochs lost): it cannot be opened, like damage.
      if (salt === undefined)
        throw new TamperedRecordError(seq, { cause: new Error('no nonce salt for its seq') });
      nonce = this.saltedNonce(seq, salt);
      cipher = bytes.subarray(h.nonceAt);
    } else {
      nonce = this.fullNonce(seq, bytes.subarray(h.nonceAt, h.nonceAt + STORED_NONCE_BYTES));
      cipher = bytes.subarray(h.nonceAt + STORED_NONCE_BYTES);
    }
    let body: Uint8Array;
    try {
      body = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
        null,
        cipher,
        associatedData(seq, header),
        nonce,
        this.key,
      );
    } catch (err) {
      throw new TamperedRecordError(seq, { cause: err });
    }
    return { h, body };
  }

  private saltedNonce(seq: number, salt: Uint8Array): Uint8Array {
    this.nonce.set(salt, 0);
    this.nonceView.setBigUint64(SALT_BYTES, BigInt(seq));
    return this.nonce;
  }

  private fullNonce(seq: number, stored: Uint8Array): Uint8Array {
    this.nonce.fill(0);
    this.nonce.set(stored, 0);
    this.nonceView.setBigUint64(STORED_NONCE_BYTES, BigInt(seq));
    return this.nonce;
  }
}

function entryAd(index: number, header: Uint8Array): Uint8Array {
  const ad = new Uint8Array(1 + 8 + header.length);
  ad[0] = ENTRY_AD_MARK;
  new DataView(ad.buffer).setBigUint64(1, BigInt(index));
  ad.set(header, 9);
  return ad;
}

function fileAd(purpose: string, header: Uint8Array): Uint8Array {
  const p = new TextEncoder().encode(purpose);
  const ad = new Uint8Array(1 + header.length + p.length);
  ad[0] = FILE_AD_MARK;
  ad.set(header, 1);
  ad.set(p, 1 + header.length);
  return ad;
}

function associatedData(seq: number, header: Uint8Array): Uint8Array {
  const ad = new Uint8Array(8 + header.length);
  new DataView(ad.buffer).setBigUint64(0, BigInt(seq));
  ad.set(header, 8);
  return ad;
}
