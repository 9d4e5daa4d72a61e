// The epochs of compact records' nonce salts (seal/nonce-salts.ts), without a queue: which salt a
// seq takes, what a start keeps and drops, the bound on how many epochs are kept, and the stored form.

import assert from 'node:assert/strict';
import {
  MAX_EPOCHS,
  NonceSalts,
  SALT_BYTES,
  decodeSalts,
  encodeSalts,
  mergeSalts,
  type SaltEpoch,
} from '../../../src/seal/nonce-salts.js';

const epoch = (fromSeq: number, fill: number): SaltEpoch => ({
  fromSeq,
  salt: new Uint8Array(SALT_BYTES).fill(fill),
});
const hex = (b: Uint8Array | undefined | null): string => Buffer.from(b ?? []).toString('hex');

describe('seal/nonce-salts', () => {
  it('a seq takes the salt of the epoch with the largest fromSeq at or below it', () => {
    const s = new NonceSalts();
    s.load([epoch(10, 1), epoch(50, 2)]);
    assert.equal(s.of(9), undefined);
    assert.equal(hex(s.of(10)), hex(epoch(0, 1).salt));
    assert.equal(hex(s.of(49)), hex(epoch(0, 1).salt));
    assert.equal(hex(s.of(50)), hex(epoch(0, 2).salt));
    assert.equal(hex(s.of(1e9)), hex(epoch(0, 2).salt));
    assert.equal(s.current, null, 'loaded epochs are for opening; none seals until one is begun');
  });

  it('a start drops epochs at or past its next seq, forgets drained ones, and adds a fresh salt', () => {
    const s = new NonceSalts();
    s.load([epoch(1, 1), epoch(20, 2), epoch(40, 3), epoch(60, 4)]);
    // Seqs from 60 on were lost (a power cut): next seq 55. The lowest stored seq is 25.
    const next = s.begin(55, 25);
    assert.ok(next !== null);
    assert.deepEqual(
      next.map((e) => e.fromSeq),
      [20, 40, 55],
    );
    const fresh = next.at(-1)!.salt;
    assert.equal(fresh.length, SALT_BYTES);
    assert.ok(![1, 2, 3, 4].some((f) => hex(epoch(0, f).salt) === hex(fresh)));
    assert.equal(s.current, null, 'not sealing before the epochs are stored');
    s.sealFrom(next);
    assert.equal(hex(s.current), hex(fresh));
    assert.ok(s.begun);
    // A reopen in the same process keeps its epoch even if the disk lost it.
    s.load([epoch(20, 2)]);
    assert.equal(hex(s.of(55)), hex(fresh));
    assert.notEqual(hex(s.begin(55, 25)?.at(-1)?.salt), hex(fresh), 'every begin draws a new salt');
  });

  it(`keeps at most ${MAX_EPOCHS} epochs that hold records: past that a start seals with stored nonces`, () => {
    const s = new NonceSalts();
    s.load(Array.from({ length: MAX_EPOCHS }, (_, i) => epoch(1 + i * 10, i % 256)));
    const next = 1 + MAX_EPOCHS * 10;
    assert.equal(s.begin(next, 1), null);
    // Once the oldest epoch's records are gone, a start begins one again.
    const after = s.begin(next, 11);
    assert.equal(after?.length, MAX_EPOCHS);
    assert.equal(after?.at(-1)?.fromSeq, next);
  });

  it('stores epochs as fromSeq and salt, and refuses a malformed value', () => {
    const epochs = [epoch(1, 7), epoch(4097, 8)];
    const back = decodeSalts(encodeSalts(epochs));
    assert.deepEqual(
      back?.map((e) => [e.fromSeq, hex(e.salt)]),
      epochs.map((e) => [e.fromSeq, hex(e.salt)]),
    );
    assert.equal(decodeSalts(encodeSalts(epochs).subarray(1)), null, 'a torn value');
    assert.equal(decodeSalts(encodeSalts([epoch(5, 1), epoch(5, 2)])), null, 'not increasing');
    assert.equal(decodeSalts(encodeSalts([epoch(0, 1)])), null, 'seqs start at 1');
    assert.equal(decodeSalts(undefined), null);
    // Where the meta and the file disagree on one epoch, the meta's wins.
    const merged = mergeSalts([epoch(5, 1)], [epoch(1, 9), epoch(5, 2)]);
    assert.deepEqual(
      merged.map((e) => [e.fromSeq, e.salt[0]]),
      [
        [1, 9],
        [5, 1],
      ],
    );
  });
});
