// The queue's sensor-id dictionary: each sensor id gets a small index, and records of format 3
// carry indices only (the id table was ~13 of ~29 bytes per reading at 200 ms records). Each
// entry is sealed like a record (sealer.ts: encrypted and authenticated with a queue key, bound
// to its index), so no plaintext id reaches the disk. This class holds the entries and knows
// nothing of LevelDB: the queue loads the stored ones at every open (open.ts) and puts the ones
// not yet written into every batch it writes (store.ts), so an entry is on disk before, or with,
// any record that uses it — LevelDB replays its log in order, so no crash keeps a later batch
// without an earlier one.
//
// Key rotation: an entry names the key that sealed it and opens with that key only; a record is
// sealed only with indices whose entries the current key sealed, so a sensor gets a new index
// under a new key, and the old key is needed only while records it sealed remain (key-ranges.ts);
// the entries of a key whose records are all gone are deleted as soon as they drain
// (queue/key-switch.ts), or at the next start (open.ts).
// An entry that fails authentication is never re-created over: it stays where it is (queue
// verify reports it), its sensor gets a new index, and records that use it are quarantined.

import { DamagedIdError, entryKeyId } from './sealer.js';
import { NonceSalts } from './nonce-salts.js';

/** What seals and opens entries (the Keyring: the entry's own key opens it). */
export interface IdCrypto {
  /** The key id new entries are sealed with. */
  readonly currentId: string;
  sealId(index: number, id: string): Uint8Array;
  /** The id; throws DamagedIdError when the entry does not authenticate or its key is not held. */
  openId(index: number, entry: Uint8Array): string;
}

export class SensorIds {
  /**
   * The queue's nonce salts (nonce-salts.ts): with the dictionary, what its records need besides
   * a key to be opened. While none is current, records are sealed in format 3.
   */
  readonly salts = new NonceSalts();
  /** Every entry known, written or not, by index. */
  private readonly entries = new Map<number, Uint8Array>();
  private readonly unwritten = new Set<number>();
  private readonly opened = new Map<number, string>();
  /** Index by id of the entries the current key sealed (built on first use). */
  private sealing: { key: string; byId: Map<string, number> } | null = null;
  private next = 0;

  /**
   * The entries stored on disk (at every open of the database) and the stored next index.
   * Entries made in this process that the disk does not hold (a write that failed) stay, to be
   * written with the next batch. An index is never handed out twice: a record that refers to a
   * lost entry must fail (and be quarantined), never read as another sensor.
   */
  load(stored: Iterable<readonly [number, Uint8Array]>, nextIndex = 0): void {
    const disk = new Map(stored);
    for (const [i, e] of this.entries) {
      if (!disk.has(i) && this.unwritten.has(i)) disk.set(i, e);
    }
    const kept = new Set([...this.unwritten].filter((i) => disk.get(i) === this.entries.get(i)));
    for (const [i, e] of disk) {
      const was = this.entries.get(i);
      if (was === undefined || !Buffer.from(was).equals(e)) this.opened.delete(i);
    }
    this.entries.clear();
    this.unwritten.clear();
    for (const [i, e] of disk) this.entries.set(i, e);
    for (const i of kept) this.unwritten.add(i);
    const floor = Number.isSafeInteger(nextIndex) && nextIndex > 0 ? nextIndex : 0;
    this.next = Math.max(this.next, floor, ...[...disk.keys()].map((i) => i + 1));
    this.sealing = null;
  }

  /** The index records sealed now give `sensor`: a new entry (unwritten) when it has none yet. */
  indexFor(sensor: string, crypto: IdCrypto): number {
    const byId = this.sealingIndex(crypto);
    const known = byId.get(sensor);
    if (known !== undefined) return known;
    const index = this.next++;
    const entry = crypto.sealId(index, sensor);
    this.entries.set(index, entry);
    this.unwritten.add(index);
    this.opened.set(index, sensor);
    byId.set(sensor, index);
    return index;
  }

  /** The id of entry `index`, undefined when there is none; throws DamagedIdError when damaged. */
  idOf(index: number, crypto: IdCrypto): string | undefined {
    const cached = this.opened.get(index);
    if (cached !== undefined) return cached;
    const entry = this.entries.get(index);
    if (entry === undefined) return undefined;
    const id = crypto.openId(index, entry);
    this.opened.set(index, id);
    return id;
  }

  /** The index the next new entry takes (stored with every batch that writes entries). */
  get nextIndex(): number {
    return this.next;
  }

  /** Entries not yet written (put them in the next batch, then call `written`). */
  unwrittenEntries(): [number, Uint8Array][] {
    return [...this.unwritten].map((i) => [i, this.entries.get(i)!]);
  }

  /** Those entries are written (their batch succeeded). */
  written(entries: readonly (readonly [number, Uint8Array])[]): void {
    for (const [i, e] of entries) if (this.entries.get(i) === e) this.unwritten.delete(i);
  }

  /**
   * Forgets the entries of keys no record still needs (their records are all gone: key-ranges.ts),
   * once they are deleted from disk. Their indices stay used (the next index never goes down).
   */
  forget(indices: Iterable<number>): void {
    for (const i of indices) {
      this.entries.delete(i);
      this.unwritten.delete(i);
      this.opened.delete(i);
    }
    this.sealing = null;
  }

  /** Every entry known, by index (for verify). */
  all(): [number, Uint8Array][] {
    return [...this.entries].sort((a, b) => a[0] - b[0]);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Value bytes of every entry (each key is 8 bytes more). */
  get valueBytes(): number {
    let n = 0;
    for (const e of this.entries.values()) n += e.length;
    return n;
  }

  private sealingIndex(crypto: IdCrypto): Map<string, number> {
    if (this.sealing?.key === crypto.currentId) return this.sealing.byId;
    const byId = new Map<string, number>();
    for (const [i, e] of [...this.entries].sort((a, b) => a[0] - b[0])) {
      if (entryKeyId(e) !== crypto.currentId) continue;
      try {
        const id = this.idOf(i, crypto);
        if (id !== undefined && !byId.has(id)) byId.set(id, i);
      } catch (err) {
        // A damaged entry is left as it is (verify reports it); its sensor gets a new index.
        if (!(err instanceof DamagedIdError)) throw err;
      }
    }
    this.sealing = { key: crypto.currentId, byId };
    return byId;
  }
}
