// The RecordSource contract (src/types.ts) as the uplink relies on it, applied to every source in
// record-sources.ts: reads are in seq order above `afterSeq` and may come back short (a quarantine
// or a drop inside them) without meaning "nothing follows"; quarantined and dropped seqs are skipped
// for good; ack of a seq that is gone is harmless; onAppend fires once the new record is readable;
// lastSeq is the newest committed seq and does not go back when records leave.

import assert from 'node:assert/strict';
import type { OpenRecord, RecordSource } from '../../src/types.js';
import type { MakeHarness, SourceHarness } from './record-sources.js';

/**
 * Reads everything above `after` the way the feed does: by seq, until a read comes back empty.
 * Returns the data records' seqs: a notice record (the real queue explains a quarantine with one,
 * notices.ts) is read in order like any record, and checked apart (test/unit/queue/notices.test.ts).
 */
export async function readAll(source: RecordSource, after = 0, limit = 8): Promise<number[]> {
  const seqs: number[] = [];
  for (let at = after; ;) {
    const recs: OpenRecord[] = await source.next(at, limit);
    if (recs.length === 0) return seqs;
    assert.ok(recs.length <= limit, `at most ${limit} records per read`);
    for (const r of recs) {
      assert.ok(r.seq > at, `seq ${r.seq} is above ${at}, in order`);
      at = r.seq;
      if (r.notice === undefined) seqs.push(r.seq);
    }
  }
}

/** The newest seq a full read meets (a notice record included). */
async function newest(source: RecordSource): Promise<number> {
  let at = 0;
  for (;;) {
    const recs = await source.next(at, 64);
    const last = recs[recs.length - 1];
    if (last === undefined) return at;
    at = last.seq;
  }
}

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

export function recordSourceContract(name: string, make: MakeHarness): void {
  describe(`RecordSource contract: ${name}`, () => {
    let h: SourceHarness | null = null;
    const open = async (setup: Parameters<MakeHarness>[0]) => (h = await make(setup));
    afterEach(async () => {
      await h?.close();
      h = null;
    });

    it('reads oldest first above afterSeq, at most limit, with the readings committed', async () => {
      const { source } = await open({ records: 20, readings: 3 });
      const recs = await source.next(4, 6);
      assert.deepEqual(
        recs.map((r) => r.seq),
        range(5, 10),
      );
      assert.ok(recs.every((r) => r.readings.length === 3));
      assert.deepEqual(await readAll(source), range(1, 20));
      assert.equal(source.lastSeq?.(), 20);
    });

    it('skips a quarantined seq for good; the read that met it may be short, the rest still follows', async () => {
      const { source, quarantined } = await open({ records: 30, tamper: [3, 17] });
      const first = await source.next(0, 8);
      assert.ok(!first.some((r) => r.seq === 3), 'the tampered record is never returned');
      assert.deepEqual(await readAll(source), [1, 2, ...range(4, 16), ...range(18, 30)]);
      assert.deepEqual(quarantined, [3, 17]);
      assert.deepEqual(await readAll(source), [1, 2, ...range(4, 16), ...range(18, 30)], 'and again');
      // A source may explain the quarantine with a notice record of its own (a newer seq).
      assert.equal(source.lastSeq?.(), await newest(source), 'lastSeq is the newest seq there is');
      assert.ok(source.lastSeq() >= 30, 'a quarantine does not move lastSeq back');
    });

    it('skips dropped seqs, and a read whose whole window was quarantined looks further', async () => {
      const h1 = await open({ records: 40, tamper: range(5, 14) });
      for (const seq of [20, 21, 22]) await h1.drop(seq);
      assert.deepEqual(
        (await h1.source.next(4, 4)).map((r) => r.seq)[0],
        15,
        'not an empty read while records follow',
      );
      assert.deepEqual(await readAll(h1.source), [...range(1, 4), ...range(15, 19), ...range(23, 40)]);
    });

    it('ack deletes; ack of a seq already gone (acked, dropped, quarantined) is harmless', async () => {
      const h3 = await open({ records: 10, tamper: [4] });
      const { source, acked } = h3;
      await readAll(source);
      assert.equal(await source.ack(2), true, 'still queued: delivered');
      assert.equal(await source.ack(2), false, 'acknowledged before');
      assert.equal(await source.ack(4), false, 'quarantined');
      assert.equal(await source.ack(999), false, 'never there');
      assert.deepEqual(acked, [2, 2, 4, 999]);
      assert.deepEqual(await readAll(source), [1, 3, ...range(5, 10)]);
      assert.equal(await h3.held(), 8);
      const last = source.lastSeq!();
      assert.ok(last >= 10);
      await source.ack(10);
      assert.equal(source.lastSeq?.(), last, 'lastSeq does not go back when the newest record leaves');
    });

    it('onAppend fires once the new record is readable; unsubscribing stops it', async () => {
      const h2 = await open({ records: 2 });
      const seen: number[][] = [];
      let reading: Promise<void> = Promise.resolve();
      const off = h2.source.onAppend(() => {
        reading = h2.source.next(2, 10).then((r) => void seen.push(r.map((x) => x.seq)));
      });
      await h2.append(1);
      await reading;
      assert.deepEqual(seen, [[3]]);
      assert.equal(h2.source.lastSeq?.(), 3);
      off();
      await h2.append(1);
      await reading;
      assert.equal(seen.length, 1, 'no call after unsubscribe');
      assert.equal(h2.source.lastSeq?.(), 4);
    });
  });
}
