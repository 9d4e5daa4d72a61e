// The nonces of compact records (record format 4, sealer.ts) are not stored, which saves 8 bytes
// a record (2 a reading at 200 ms records): a record's 24-byte XChaCha20 nonce is a 16-byte salt,
// then its seq (8 bytes big-endian). A nonce must never be used twice with one key, and a seq can
// come back: after a power cut under `durability: os` (the newest records and the next seq were
// never synced), or in a queue re-created while its key is kept. So each start begins an epoch: a
// fresh random salt from the queue's next seq on, written durably before anything is sealed with
// it, and the seqs a start hands out again are sealed with a salt no earlier record used.
//
// A record with seq s takes the salt of the epoch with the largest fromSeq ≤ s. The epochs are
// kept in the queue's meta and, like the seq mark, in a file beside the database
// (edgegw-salts), which a repair reads when damage took the meta with it. An epoch is forgotten
// once no stored record is sealed in it (open.ts). Value: per epoch, fromSeq as a float64, then
// the salt.

import { randomFillSync } from 'node:crypto';

export const SALT_BYTES = 16;
const ENTRY_BYTES = 8 + SALT_BYTES;
/**
 * Epochs that still hold records, at most: a daemon restarted every 5 s (systemd's RestartSec)
 * while its uplink is down would add one per start. Past it, starts seal with stored nonces
 * (format 3) until older epochs drain: the meta value and the file stay small (~24 and ~50 KiB).
 */
export const MAX_EPOCHS = 1024;

export interface SaltEpoch {
  readonly fromSeq: number;
  readonly salt: Uint8Array;
}

export class NonceSalts {
  private epochs: SaltEpoch[] = [];
  /** The epoch this process seals with (begun at its first open), or null: then format 3. */
  private sealing: SaltEpoch | null = null;

  /** The epochs stored (merged with what this process knows: its own epoch stays). */
  load(stored: readonly SaltEpoch[]): void {
    const known = mergeSalts(stored, this.epochs);
    this.epochs = this.sealing === null ? known : mergeSalts([this.sealing], known);
  }

  /**
   * A new epoch with a random salt from `nextSeq` on; the epochs at or above it are dropped (no
   * stored record has such a seq). Returns the epochs to store, or null when MAX_EPOCHS still hold
   * records; seal with it only once stored (`sealFrom`).
   */
  begin(nextSeq: number, lowest: number): SaltEpoch[] | null {
    const kept = this.epochs.filter((e) => e.fromSeq < nextSeq);
    // Epochs older than the one `lowest` (the lowest stored seq) is in hold nothing any more.
    let first = 0;
    while (first + 1 < kept.length && kept[first + 1]!.fromSeq <= lowest) first++;
    const live = kept.slice(first);
    if (live.length >= MAX_EPOCHS) return null;
    const salt = new Uint8Array(SALT_BYTES);
    randomFillSync(salt);
    return [...live, { fromSeq: nextSeq, salt }];
  }

  /** `epochs` (from begin) are stored: the newest seals from now on. */
  sealFrom(epochs: readonly SaltEpoch[]): void {
    this.epochs = [...epochs];
    this.sealing = epochs.at(-1) ?? null;
  }

  /** The salt new records are sealed with, or null when none is stored yet. */
  get current(): Uint8Array | null {
    return this.sealing?.salt ?? null;
  }

  /** Whether this process seals with a salt (it began its epoch). */
  get begun(): boolean {
    return this.sealing !== null;
  }

  /** The salt of the epoch `seq` is in, or undefined when no epoch is known for it. */
  of(seq: number): Uint8Array | undefined {
    let found: SaltEpoch | undefined;
    for (const e of this.epochs) {
      if (e.fromSeq > seq) break;
      found = e;
    }
    return found?.salt;
  }

  all(): readonly SaltEpoch[] {
    return this.epochs;
  }
}

export function encodeSalts(epochs: readonly SaltEpoch[]): Uint8Array {
  const b = new Uint8Array(epochs.length * ENTRY_BYTES);
  const v = new DataView(b.buffer);
  epochs.forEach((e, i) => {
    v.setFloat64(i * ENTRY_BYTES, e.fromSeq);
    b.set(e.salt, i * ENTRY_BYTES + 8);
  });
  return b;
}

/** The stored epochs, or null when absent or malformed. */
export function decodeSalts(b: Uint8Array | undefined): SaltEpoch[] | null {
  if (b === undefined || b.length === 0 || b.length % ENTRY_BYTES !== 0) return null;
  const v = new DataView(b.buffer, b.byteOffset, b.length);
  const out: SaltEpoch[] = [];
  for (let at = 0; at < b.length; at += ENTRY_BYTES) {
    const fromSeq = v.getFloat64(at);
    if (!Number.isSafeInteger(fromSeq) || fromSeq < 1) return null;
    if (out.length > 0 && fromSeq <= out.at(-1)!.fromSeq) return null;
    out.push({ fromSeq, salt: Uint8Array.from(b.subarray(at + 8, at + ENTRY_BYTES)) });
  }
  return out;
}

/** Two lists of epochs as one: where both have an epoch at one fromSeq, `first`'s. */
export function mergeSalts(first: readonly SaltEpoch[], second: readonly SaltEpoch[]): SaltEpoch[] {
  const byFrom = new Map(second.map((e) => [e.fromSeq, e]));
  for (const e of first) byFrom.set(e.fromSeq, e);
  return [...byFrom.values()].sort((a, b) => a.fromSeq - b.fromSeq);
}
