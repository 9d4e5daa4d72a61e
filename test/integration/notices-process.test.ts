// Notice records end to end (accounting issue): a real daemon SIGKILLed, its queue damaged and
// repaired (repair continues at the seq mark, past never-used seqs), restarted: a real TLS
// broker's subscriber receives a `skipped` notice in the shared shape, and every seq up to the
// last one is received, or covered by a notice's range, or is a notice's own seq.

import assert from 'node:assert/strict';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, startCli } from '../helpers/cli.js';
import { waitFor, subscribedSite, type TestSite } from '../helpers/site.js';

interface Gap {
  from: number;
  to: number;
  why: string;
  readings: number | null;
}

describe('notice records (child process, real broker)', function () {
  this.timeout(90_000);
  const fixture = subscribedSite({ sensors: '  - { id: counter-1, sim: { wave: counter }, every: 20ms }' });
  let site: TestSite;
  beforeEach(() => {
    site = fixture.site;
  });

  /** Every notice entry received: its own seq, t0 and gap. */
  const notices = (): { seq: number; t0: number; r: unknown[]; gap: Gap }[] =>
    fixture.messages.flatMap((m) =>
      m.recs.flatMap((rec) => {
        const gap = (rec as { gap?: Gap }).gap;
        return gap === undefined ? [] : [{ seq: rec.seq, t0: rec.t0, r: rec.r, gap }];
      }),
    );

  it('a SIGKILL, a repair past unused seqs and a restart: a skipped notice explains them; no seq is unexplained', async () => {
    const first = startCli(['run', '-c', site.configFile]);
    await waitFor(() => fixture.readings().length >= 30, 20_000, 'readings before the kill');
    first.child.kill('SIGKILL');
    assert.equal((await first.done).signal, 'SIGKILL');
    const inspect = await runCli(['queue', 'inspect', '--json', '-c', site.configFile]);
    assert.equal(inspect.code, 0, inspect.stderr);
    const nextBefore = (JSON.parse(inspect.stdout) as { nextSeq: number }).nextSeq;

    // Damage that LevelDB's own repair rebuilds from: the seq mark outlives it.
    await unlink(join(site.dir, 'data', 'CURRENT'));
    const repair = await runCli(['queue', 'repair', '-c', site.configFile]);
    assert.equal(repair.code, 0, repair.stderr);
    const next = Number(/next seq (\d+)/.exec(repair.stdout)?.[1]);
    assert.ok(next > nextBefore, `repair continues at the seq mark (${next}), above ${nextBefore}`);
    // From what the database still holds: records held in memory at the kill (write-behind) may
    // lie below the reservation the offline figures continue at.
    const from = Number(/seq (\d+)\.\.\d+ skipped/.exec(repair.stdout)?.[1]);
    assert.ok(from <= nextBefore, `the skipped range starts at ${from}, at or below ${nextBefore}`);
    assert.match(repair.stdout, new RegExp(`seq ${from}\\.\\.${next - 1} skipped`));

    const second = startCli(['run', '-c', site.configFile]);
    await waitFor(
      () => notices().some((n) => n.gap.why === 'skipped'),
      20_000,
      'the skipped notice at the subscriber',
    );
    const received = fixture.readings().length;
    await waitFor(() => fixture.readings().length >= received + 10, 20_000, 'readings after the notice');
    second.child.kill('SIGTERM');
    assert.equal((await second.done).code, 0);

    const skipped = notices().filter((n) => n.gap.why === 'skipped');
    assert.equal(new Set(skipped.map((n) => n.seq)).size, 1, 'one skipped notice (duplicates only resent)');
    const n = skipped[0]!;
    assert.deepEqual(n.gap, { from, to: next - 1, why: 'skipped', readings: null });
    assert.deepEqual(n.r, [], 'a consumer that ignores notices decodes an empty record');
    assert.ok(n.seq >= next, 'the notice has a seq of its own, past the skipped ones');
    assert.ok(Math.abs(n.t0 - Date.now()) < 60_000, 't0 is when the notice was made');

    // received seqs ∪ notice ranges ∪ notice seqs = 1..max
    const seen = new Set(fixture.readings().map((r) => r.seq));
    for (const x of notices()) {
      seen.add(x.seq);
      for (let s = x.gap.from; s <= x.gap.to; s++) seen.add(s);
    }
    const max = Math.max(...seen);
    const missing: number[] = [];
    for (let s = 1; s <= max; s++) if (!seen.has(s)) missing.push(s);
    assert.deepEqual(missing, [], 'every seq up to the last is received or explained');

    // The status counters and the offline figures count the notice apart from the readings.
    const after = await runCli(['queue', 'inspect', '--json', '-c', site.configFile]);
    const doc = JSON.parse(after.stdout) as { noticeTotals: { committed: number; delivered: number } };
    assert.ok(doc.noticeTotals.committed >= 1);
    assert.equal(doc.noticeTotals.delivered, doc.noticeTotals.committed, 'every notice was acknowledged');
  });
});
