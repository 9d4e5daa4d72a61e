// A damaged queue in the middle of a live-first drain: the daemon is stopped with a backlog, the
// LevelDB is damaged (values through the `level` package, files by hand), the daemon restarts.
// A damaged record is quarantined (logged by seq) and everything else still delivered; damage that
// must be refused at start (missing CURRENT, a wrong key: issue 6 breaks 3 and 5) is refused with a
// non-zero exit, read-only commands write nothing, and after the documented recovery
// (`edgegw queue repair`, or the right key back) nothing is lost.

import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Level } from 'level';
import { writeNewKeyFile } from '../../../src/seal/keyfile.js';
import { KIND_RECORD, queueKey, RECORD_END, seqOfKey } from '../../../src/queue/keys.js';
import type { ChaosSite } from '../harness.js';
import { backlogAtLeast, backlogAtMost, delivers } from '../conditions.js';
import { scenario } from '../scenario.js';

// Live readings (about 10 records/s) stay well under what the paced uplink drains (4 messages/s
// of up to ~8 small records), so a backlog drains, slowly enough for a damage to meet it.
const SLOW_DRAIN = {
  sensors: '  - { id: counter-1, sim: { wave: counter }, every: 100ms }',
  flush: '100ms',
  queue: '  maxRecordReadings: 10',
  uplink: '  limits: { publishesPerSecond: 4, maxPayloadBytes: 1KiB, inflight: 4 }',
};

/** Builds a backlog, lets a live-first drain begin, then stops the daemon with the backlog queued. */
async function midDrain(site: ChaosSite): Promise<void> {
  await site.daemon.start();
  await backlogAtLeast(site, 40);
  await site.broker.start();
  await delivers(site, 4);
  await site.broker.kill();
  const exit = await site.daemon.stop();
  assert.equal(exit.code, 0, `clean stop before the damage: ${exit.stderr}`);
}

async function withDb<T>(site: ChaosSite, f: (db: Level<Uint8Array, Uint8Array>) => Promise<T>): Promise<T> {
  const db = new Level<Uint8Array, Uint8Array>(site.dataDir, {
    keyEncoding: 'view',
    valueEncoding: 'view',
    createIfMissing: false,
  });
  await db.open();
  try {
    return await f(db);
  } finally {
    await db.close();
  }
}

/** Queued record seqs and values, in seq order. */
async function records(db: Level<Uint8Array, Uint8Array>): Promise<[number, Uint8Array][]> {
  const all = await db.iterator({ gte: queueKey(KIND_RECORD, 0), lt: RECORD_END }).all();
  return all.map(([k, v]) => [seqOfKey(k), v]);
}

function middle<T>(xs: T[], at: number): T {
  const x = xs[Math.min(xs.length - 1, Math.floor(xs.length * at))];
  if (x === undefined) throw new Error('no queued records to damage');
  return x;
}

/** A value-level damage: the daemon must start, quarantine what fails, deliver the rest. */
function valueDamage(
  name: string,
  damage: (db: Level<Uint8Array, Uint8Array>, recs: [number, Uint8Array][]) => Promise<void>,
): void {
  scenario(
    `tamper mid-drain: ${name}`,
    'a record moved or altered is quarantined, never delivered',
    SLOW_DRAIN,
    async ({ site }) => {
      await midDrain(site);
      await withDb(site, async (db) => damage(db, await records(db)));
      await site.broker.start();
      const exit = await site.daemon.start({ mayFail: true });
      assert.equal(exit, null, `daemon refused a queue with a damaged value: ${exit?.stderr ?? ''}`);
      await backlogAtMost(site, 5, 25_000);
    },
  );
}

/** The queue's next seq, read offline. */
async function nextSeqOf(site: ChaosSite): Promise<number> {
  const r = await site.queueCli('inspect');
  assert.equal(r.code, 0, `queue inspect: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { nextSeq: number }).nextSeq;
}

/** Files of the queue folder with sizes: a read-only command must leave them as they were. */
function listing(dir: string): string {
  return readdirSync(dir)
    .sort()
    .map((f) => `${f}:${statSync(join(dir, f)).size}`)
    .join(' ');
}

describe('chaos: tampered queue', function () {
  this.timeout(0);

  valueDamage('flipped byte', async (db, recs) => {
    const [seq, v] = middle(recs, 0.5);
    const bad = Uint8Array.from(v);
    bad[bad.length - 3]! ^= 0x40;
    await db.put(queueKey(KIND_RECORD, seq), bad, { sync: true });
  });

  valueDamage('two values swapped', async (db, recs) => {
    const [a, va] = middle(recs, 0.3);
    const [b, vb] = middle(recs, 0.7);
    await db
      .batch()
      .put(queueKey(KIND_RECORD, a), vb)
      .put(queueKey(KIND_RECORD, b), va)
      .write({ sync: true });
  });

  valueDamage('a value replayed under another seq', async (db, recs) => {
    const [, va] = middle(recs, 0.2);
    const [b] = middle(recs, 0.6);
    await db.put(queueKey(KIND_RECORD, b), va, { sync: true });
  });

  valueDamage('truncated value', async (db, recs) => {
    const [seq, v] = middle(recs, 0.5);
    await db.put(queueKey(KIND_RECORD, seq), v.subarray(0, v.length >> 1), { sync: true });
  });

  scenario(
    'tamper mid-drain: a deleted table file',
    'a damaged database is never silently re-created; what authenticates is kept; no seq is reused',
    SLOW_DRAIN,
    async ({ site, note }) => {
      await midDrain(site);
      // Push everything into table files first, so there is one to delete.
      const stored = await withDb(site, async (db) => {
        await (db as unknown as { compactRange(a: Uint8Array, b: Uint8Array): Promise<void> }).compactRange(
          queueKey(KIND_RECORD, 0),
          RECORD_END,
        );
        return (await records(db)).map(([seq]) => seq);
      });
      const nextBefore = await nextSeqOf(site);
      const tables = readdirSync(site.dataDir).filter((f) => f.endsWith('.ldb'));
      assert.ok(tables.length > 0, 'no table file after compaction');
      await unlink(join(site.dataDir, tables[0]!));
      await site.broker.start();
      const exit = await site.daemon.start({ mayFail: true });
      assert.notEqual(exit, null, 'run started on a queue with a table file missing');
      assert.notEqual(exit!.code, 0, 'a refused start must exit non-zero');
      note('refused', String(exit!.code));
      const repair = await site.queueCli('repair');
      assert.equal(repair.code, 0, `queue repair exited ${String(repair.code)}: ${repair.stderr}`);
      const next = Number(/next seq (\d+)/.exec(repair.stdout)?.[1]);
      assert.ok(next >= nextBefore, `repair's next seq ${next} is below ${nextBefore}: seqs would be reused`);
      // What the deleted file took is known exactly (stored before, missing after): explained.
      const kept = new Set(await withDb(site, async (db) => (await records(db)).map(([seq]) => seq)));
      const lost = stored.filter((q) => !kept.has(q));
      note('lostWithTable', lost.length);
      for (const q of lost) site.explained.push({ from: q, to: q, reason: 'lost-with-table' });
      if (next > nextBefore) site.explained.push({ from: nextBefore, to: next - 1, reason: 'never-used' });
      site.repaired = true;
      const again = await site.daemon.start({ mayFail: true });
      assert.equal(again, null, `daemon refused after queue repair: ${again?.stderr ?? ''}`);
      await backlogAtMost(site, 5, 25_000);
    },
  );

  scenario(
    'tamper mid-drain: a missing CURRENT',
    'a damaged database is refused, never re-created; repair keeps every record',
    SLOW_DRAIN,
    async ({ site }) => {
      await midDrain(site);
      const nextBefore = await nextSeqOf(site);
      await unlink(join(site.dataDir, 'CURRENT'));
      const before = listing(site.dataDir);
      const run = await site.daemon.start({ mayFail: true });
      assert.notEqual(run, null, 'run started on a queue without CURRENT');
      assert.notEqual(run!.code, 0, 'run on a queue without CURRENT must exit non-zero');
      for (const verb of ['inspect', 'verify']) {
        const r = await site.queueCli(verb);
        assert.notEqual(r.code, 0, `queue ${verb} exited 0 on a queue without CURRENT`);
      }
      assert.equal(
        listing(site.dataDir),
        before,
        'a refused run or a read-only command changed the queue folder',
      );
      const repair = await site.queueCli('repair');
      assert.equal(repair.code, 0, `queue repair exited ${String(repair.code)}: ${repair.stderr}`);
      // Repair continues above the seq mark: the seqs it skips were never used.
      const next = Number(/next seq (\d+)/.exec(repair.stdout)?.[1]);
      assert.ok(next >= nextBefore, `repair's next seq ${next} is below ${nextBefore}: seqs would be reused`);
      if (next > nextBefore) site.explained.push({ from: nextBefore, to: next - 1, reason: 'never-used' });
      site.repaired = true;
      await site.broker.start();
      const again = await site.daemon.start({ mayFail: true });
      assert.equal(again, null, `daemon refused after queue repair: ${again?.stderr ?? ''}`);
      await backlogAtMost(site, 5, 25_000);
    },
  );

  scenario(
    'tamper mid-drain: a wrong key',
    'a wrong key is refused at start and quarantines nothing',
    SLOW_DRAIN,
    async ({ site }) => {
      await midDrain(site);
      const keyFile = join(site.dir, 'pki', 'queue.key');
      await rename(keyFile, `${keyFile}.right`);
      await writeNewKeyFile(keyFile);
      await site.broker.start();
      const run = await site.daemon.start({ mayFail: true });
      assert.notEqual(run, null, 'run started with the wrong queue key');
      assert.notEqual(run!.code, 0, 'a wrong key must exit non-zero');
      assert.match(
        run!.stderr + site.daemon.logText(),
        /queue\.key|keyFile/,
        'the refusal names the key file',
      );
      await rm(keyFile);
      await rename(`${keyFile}.right`, keyFile);
      const verify = await site.queueCli('verify');
      assert.equal(verify.code, 0, `verify with the right key back: ${verify.stdout}${verify.stderr}`);
      const again = await site.daemon.start({ mayFail: true });
      assert.equal(again, null, `daemon refused with the right key back: ${again?.stderr ?? ''}`);
      await backlogAtMost(site, 5, 25_000);
    },
  );
});
