// The queue keys a process holds: the current key (queue.keyFile), which seals every new record,
// and the previous keys (queue.previousKeyFiles), which only open records sealed before a
// rotation. Each key is known to the queue by its key id (see keyIdOf), never by its bytes. A
// rotate-queue-key job seats a new current key while the daemon runs (seat); keys whose records
// are all gone are released (release).

import sodium from 'libsodium-wrappers';
import type { GapNotice, OpenRecord, Reading, SealedRecord } from '../types.js';
import { readQueueKey } from './keyfile.js';
import { DamagedIdError, Sealer, entryKeyId, sealedFileKeyId, type SaltLookup } from './sealer.js';
import type { IdCrypto, SensorIds } from './sensor-ids.js';

/** Bytes of a key id. */
export const KEY_ID_BYTES = 16;
// A fixed context, so a key id is a keyed BLAKE2b (a MAC) of a constant: it identifies the key
// and tells nothing about it, and it cannot collide with any other use of the key.
const KEY_ID_CONTEXT = 'edgegw queue key id v1';

/** The key id of a queue key: 16 bytes of BLAKE2b keyed with it, as 32 hex digits. */
export async function keyIdOf(key: Uint8Array): Promise<string> {
  await sodium.ready;
  return sodium.to_hex(sodium.crypto_generichash(KEY_ID_BYTES, KEY_ID_CONTEXT, key));
}

/** A key read and ready to seal (from Keyring.hold); its bytes live only in its sealer. */
export interface HeldKey {
  readonly id: string;
  readonly file: string;
  readonly sealer: Sealer;
}

export class Keyring implements IdCrypto {
  private readonly byId = new Map<string, HeldKey>();

  private constructor(
    private current: HeldKey,
    previous: readonly HeldKey[],
  ) {
    // The current key wins when a previous file holds the same key.
    for (const k of [current, ...previous]) if (!this.byId.has(k.id)) this.byId.set(k.id, k);
  }

  /** Reads one key file (checked like queue.keyFile), to seat later; wipes the bytes read. */
  static hold(file: string): Promise<HeldKey> {
    return holdKey(file);
  }

  /**
   * `k` seals from now on; the key it replaces keeps opening what it sealed. The queue must have
   * its range first (SealedQueue.switchKey calls this once that is written).
   */
  seat(k: HeldKey): void {
    this.byId.set(k.id, k);
    this.current = k;
  }

  /** Forgets keys no stored record needs any more (never the current one). */
  release(ids: Iterable<string>): void {
    for (const id of ids) if (id !== this.current.id) this.byId.delete(id);
  }

  /** Reads every key file (each checked like queue.keyFile: mode, size); wipes the bytes read. */
  static async load(keyFile: string, previousKeyFiles: readonly string[] = []): Promise<Keyring> {
    const current = await holdKey(keyFile);
    const previous: HeldKey[] = [];
    for (const file of previousKeyFiles) previous.push(await holdKey(file));
    return new Keyring(current, previous);
  }

  /** From key bytes already in memory (tests, the demo); `file` names each key in messages. */
  static async fromKeys(
    current: { key: Uint8Array; file: string },
    previous: readonly { key: Uint8Array; file: string }[] = [],
  ): Promise<Keyring> {
    const hold = async (k: { key: Uint8Array; file: string }): Promise<HeldKey> => ({
      id: await keyIdOf(k.key),
      file: k.file,
      sealer: await Sealer.create(k.key),
    });
    const prev: HeldKey[] = [];
    for (const k of previous) prev.push(await hold(k));
    return new Keyring(await hold(current), prev);
  }

  get currentId(): string {
    return this.current.id;
  }

  /** Key id → the file it was read from, current key first. */
  files(): ReadonlyMap<string, string> {
    return new Map([...this.byId].map(([id, k]) => [id, k.file]));
  }

  /**
   * Seals a record with the current key: with the queue's dictionary `ids`, in format 4 (compact,
   * indices, new entries made there) once the queue has a nonce salt, else format 3; without a
   * dictionary, in format 1 (its own id table).
   */
  seal(seq: number, readings: readonly Reading[], ids?: SensorIds): SealedRecord {
    if (ids === undefined) return this.current.sealer.seal(seq, readings);
    const indexOf = (sensor: string): number => ids.indexFor(sensor, this);
    const salt = ids.salts.current;
    if (salt === null) return this.current.sealer.sealIndexed(seq, readings, indexOf);
    return this.current.sealer.sealCompact(seq, readings, indexOf, salt);
  }

  /** Seals dictionary entry `index` with the current key (sensor-ids.ts). */
  sealId(index: number, id: string): Uint8Array {
    return this.current.sealer.sealId(index, id, this.current.id);
  }

  /** Opens a dictionary entry with the key it names; DamagedIdError if not held or not authentic. */
  openId(index: number, entry: Uint8Array): string {
    const keyId = entryKeyId(entry);
    if (keyId === null) throw new DamagedIdError(index, 'is malformed');
    const k = this.byId.get(keyId);
    if (k === undefined)
      throw new DamagedIdError(index, `was sealed with key id ${keyId}, which no key file holds`);
    return k.sealer.openId(index, entry);
  }

  /** Seals a file's content for `purpose` with the current key (the fleet overlay). */
  sealFile(purpose: string, plain: Uint8Array): Uint8Array {
    return this.current.sealer.sealFile(purpose, plain, this.current.id);
  }

  /**
   * Opens a file sealed for `purpose` with the key it names (current, previous or rotated); throws
   * why it does not open: malformed, sealed by a key no key file holds, or not authentic.
   */
  openFile(purpose: string, sealed: Uint8Array): Uint8Array {
    const keyId = sealedFileKeyId(sealed);
    if (keyId === null) throw new Error('it is not a sealed file');
    const k = this.byId.get(keyId);
    if (k === undefined) throw new Error(`it was sealed with key id ${keyId}, which no key file holds`);
    const plain = k.sealer.openFile(purpose, sealed);
    if (plain === null) throw new Error('it failed authentication (altered or damaged)');
    return plain;
  }

  /** Seals a notice record with the current key (notice records, DESIGN.md §3). */
  sealNotice(seq: number, notice: GapNotice, t0: number): SealedRecord {
    return this.current.sealer.sealNotice(seq, notice, t0);
  }

  /**
   * Opens a record with the key that sealed it (the queue knows which: no trial decryption).
   * An unknown id, or null, means the current key. Throws TamperedRecordError like Sealer.open.
   */
  open(rec: SealedRecord, keyId: string | null, ids?: SensorIds): OpenRecord {
    const k = (keyId === null ? undefined : this.byId.get(keyId)) ?? this.current;
    if (ids === undefined) return k.sealer.open(rec);
    return k.sealer.open(
      rec,
      (i) => ids.idOf(i, this),
      (seq) => ids.salts.of(seq),
    );
  }

  /** The dictionary indices a record sealed by `keyId` refers to; null when it does not open. */
  indicesOf(rec: SealedRecord, keyId: string, salts?: SaltLookup): Set<number> | null {
    return this.byId.get(keyId)?.sealer.indicesOf(rec, salts) ?? null;
  }

  /**
   * The id of the held key that authenticates this record, or null. Trial decryption: only for
   * what has no key ids to go by (a queue written before they were kept, `queue repair`). It
   * authenticates only: a record whose dictionary entry is damaged is still this key's.
   */
  identify(rec: SealedRecord, salts?: SaltLookup): string | null {
    for (const k of this.byId.values()) if (k.sealer.authenticates(rec, salts)) return k.id;
    return null;
  }
}

async function holdKey(file: string): Promise<HeldKey> {
  const key = await readQueueKey(file);
  try {
    return { id: await keyIdOf(key), file, sealer: await Sealer.create(key) };
  } finally {
    key.fill(0);
  }
}
