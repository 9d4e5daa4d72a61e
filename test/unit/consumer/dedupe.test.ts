// Dedupe by (gw, seq), the gap report, and the state file that lets a restarted consumer go on
// without emitting anything twice. Real files on disk; the clock is injected for the ages.

import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Deduper } from '../../../src/consumer/dedupe.js';
import { decodePayload, type DecodedMessage } from '../../../src/consumer/decode.js';
import { ConsumerStateError } from '../../../src/consumer/errors.js';
import { loadState, saveState } from '../../../src/consumer/state-file.js';

const T = 1764380000000;

/** A message of data records `seqs` (one reading each) and notices. */
function msg(
  gw: string,
  seqs: number[],
  notices: { seq: number; from: number; to: number; why?: string; readings?: number | null }[] = [],
): DecodedMessage {
  const recs = [
    ...seqs.map((s) => ({ seq: s, t0: T, r: [[0, s, s]] })),
    ...notices.map((n) => ({
      seq: n.seq,
      t0: T,
      r: [],
      gap: {
        from: n.from,
        to: n.to,
        why: n.why ?? 'dropped',
        readings: n.readings === undefined ? 1 : n.readings,
      },
    })),
  ].sort((a, b) => a.seq - b.seq);
  return decodePayload(JSON.stringify({ v: 1, gw, ids: ['s'], recs }));
}

describe('consumer Deduper', () => {
  it('emits each (gw, seq) once, out of order and repeated, per gateway', () => {
    const d = new Deduper();
    const seen: string[] = [];
    const take = (m: DecodedMessage) => d.accept(m).rows.forEach((r) => seen.push(`${r.gw}:${r.seq}`));
    take(msg('a', [5, 6]));
    take(msg('a', [1, 2, 3]));
    take(msg('a', [2, 3, 4])); // 2 and 3 again
    take(msg('b', [1, 2])); // another gateway's seqs are its own
    take(msg('a', [5, 6, 7]));
    assert.deepEqual(seen, ['a:5', 'a:6', 'a:1', 'a:2', 'a:3', 'a:4', 'b:1', 'b:2', 'a:7']);
    const a = d.report().find((g) => g.gw === 'a')!;
    assert.deepEqual([a.first, a.watermark, a.highest, a.missing.length], [1, 7, 7, 0]);
  });

  it('keeps the state as ranges: one range once everything arrived, however many seqs', () => {
    const d = new Deduper();
    const order = Array.from({ length: 5000 }, (_, i) => i + 1).reverse();
    for (let i = 0; i < order.length; i += 10) d.accept(msg('a', order.slice(i, i + 10).reverse()));
    const g = d.state().gateways['a']!;
    assert.deepEqual(
      g.spans.map((s) => [s.from, s.to]),
      [[1, 5000]],
    );
  });

  it('reports holes with their age since first noticed, and closes them when the seqs arrive', () => {
    let now = T;
    const d = new Deduper({ now: () => now });
    d.accept(msg('a', [1, 2]));
    d.accept(msg('a', [6])); // 3..5 noticed missing now
    now += 30_000;
    d.accept(msg('a', [9])); // 7..8 noticed missing now
    now += 10_000;
    let r = d.report()[0]!;
    assert.deepEqual(
      r.missing.map((m) => [m.from, m.to, m.seqs, m.ageS]),
      [
        [3, 5, 3, 40],
        [7, 8, 2, 10],
      ],
    );
    d.accept(msg('a', [4])); // splits the older hole; both parts keep its age
    r = d.report()[0]!;
    assert.deepEqual(
      r.missing.map((m) => [m.from, m.to, m.ageS]),
      [
        [3, 3, 40],
        [5, 5, 40],
        [7, 8, 10],
      ],
    );
    d.accept(msg('a', [3, 5, 7, 8]));
    assert.deepEqual(d.report()[0]!.missing, []);
    assert.equal(d.report()[0]!.watermark, 9);
  });

  it('counts a notice seq as received and its range as explained, not missing', () => {
    const d = new Deduper();
    d.accept(msg('a', [1, 2, 9]));
    const got = d.accept(msg('a', [], [{ seq: 10, from: 3, to: 8, why: 'dropped', readings: 60 }]));
    assert.equal(got.notices.length, 1);
    const r = d.report()[0]!;
    assert.deepEqual(r.missing, []);
    assert.deepEqual([r.watermark, r.highest], [10, 10]);
    assert.deepEqual(r.explained, [
      { from: 3, to: 8, why: 'dropped', readings: 60, noticeSeq: 10, receivedSeqs: 0 },
    ]);
    assert.deepEqual(r.totals.dropped, { ranges: 1, seqs: 6, readings: 60 });
    // The same notice again (at-least-once) is a duplicate: counted once.
    assert.deepEqual(d.accept(msg('a', [], [{ seq: 10, from: 3, to: 8 }])).notices, []);
    assert.equal(d.report()[0]!.totals.dropped.ranges, 1);
  });

  it('still emits, once, a record that arrives after the notice explaining it (dropped while in flight)', () => {
    const d = new Deduper();
    d.accept(msg('a', [1, 2], [{ seq: 6, from: 3, to: 5 }]));
    assert.deepEqual(
      d.accept(msg('a', [4])).rows.map((r) => r.seq),
      [4],
    );
    assert.deepEqual(d.accept(msg('a', [4])).rows, []);
    assert.equal(d.report()[0]!.explained[0]!.receivedSeqs, 1);
    // A record received before its notice is not emitted again after it.
    const e = new Deduper();
    e.accept(msg('a', [1, 2, 3]));
    e.accept(msg('a', [], [{ seq: 6, from: 3, to: 5 }]));
    assert.deepEqual(e.accept(msg('a', [3])).rows, []);
  });

  it('bounds the holes per gateway: past maxHoles the oldest is given up and counted', () => {
    const d = new Deduper({ maxHoles: 3 });
    d.accept(msg('a', [1, 3, 5, 7, 9, 11]));
    const r = d.report()[0]!;
    assert.equal(r.missing.length, 3);
    assert.deepEqual(
      r.missing.map((m) => m.from),
      [6, 8, 10],
    );
    assert.equal(r.givenUpSeqs, 2);
  });
});

describe('consumer state file', () => {
  let dir = '';
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), 'edgegw-consumer-'))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('lets a restarted consumer emit nothing twice', async () => {
    const file = join(dir, 'state.json');
    assert.equal(await loadState(file), null);
    const first = new Deduper();
    const emitted = new Set<number>();
    for (const r of first.accept(msg('gw', [1, 2, 3, 7, 8], [{ seq: 9, from: 4, to: 4 }])).rows)
      emitted.add(r.seq);
    await saveState(file, first.state());
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.deepEqual(await readdir(dir), ['state.json'], 'no temp file left behind');

    // "Restart": a new deduper from the file; the broker redelivers 1..9 and then sends 5, 6, 10.
    const second = new Deduper({}, (await loadState(file))!);
    const again = second.accept(msg('gw', [1, 2, 3, 5, 6, 7, 8, 10], [{ seq: 9, from: 4, to: 4 }]));
    assert.deepEqual(
      again.rows.map((r) => r.seq),
      [5, 6, 10],
    );
    for (const r of again.rows) assert.ok(!emitted.has(r.seq));
    assert.deepEqual(second.report()[0]!.missing, []);
  });

  it('refuses a damaged or foreign state file instead of starting fresh', async () => {
    const file = join(dir, 'state.json');
    await writeFile(file, '{"version":1,"gateways":{"g":{"spans":[{"from":5,"to":9},{"from":2,"to":3}]');
    await assert.rejects(
      loadState(file),
      (e: unknown) => e instanceof ConsumerStateError && /not valid JSON/.test(e.message),
    );
    await writeFile(file, JSON.stringify({ version: 99, gateways: {} }));
    await assert.rejects(
      loadState(file),
      (e: unknown) => e instanceof ConsumerStateError && /version 99/.test(e.message),
    );
    await writeFile(
      file,
      JSON.stringify({
        version: 1,
        gateways: {
          g: {
            spans: [
              { from: 5, to: 9 },
              { from: 2, to: 3 },
            ],
            explained: [],
          },
        },
      }),
    );
    await assert.rejects(
      loadState(file),
      (e: unknown) => e instanceof ConsumerStateError && e.code === 'EDGEGW_E_CONSUMER_IO',
    );
  });

  it('reports a state file it cannot write with its code', async () => {
    await assert.rejects(
      saveState(join(dir, 'missing-folder', 'state.json'), new Deduper().state()),
      (e: unknown) => e instanceof ConsumerStateError && /ENOENT/.test(e.message),
    );
  });
});
