// Break 5 of issue 6: an existing dataDir that does not open as the queue it was is an error,
// never a silent re-create; read-only opens write nothing to dataDir; `repair` keeps every record
// that authenticates and never reuses a seq. Real LevelDB files, damaged for real.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Level } from 'level';
import { EdgegwError, Exit } from '../../../src/errors.js';
import { Keyring } from '../../../src/seal/keyring.js';
import { SealedQueue } from '../../../src/queue/sealed-queue.js';
import { repairQueue } from '../../../src/queue/repair.js';
import { KIND_RECORD, queueKey } from '../../../src/queue/keys.js';
import { MARK_STEP, SEQ_MARK_FILE } from '../../../src/queue/seq-mark.js';
import type { QueueKeys } from '../../../src/queue/key-ranges.js';
import { captureLog, fixedReadings } from '../../helpers/queue.js';

/** name → size and mtime (or content) of every file of a folder. */
async function snapshot(dir: string, by: 'mtime' | 'content' = 'mtime'): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(dir)).sort()) {
    const st = await stat(join(dir, name));
    out[name] =
      by === 'mtime' ? `${st.size}@${st.mtimeMs}` : (await readFile(join(dir, name))).toString('base64');
  }
  return out;
}

describe('queue damage: refuse, read-only, repair', () => {
  let root: string;
  let dir: string;
  let ring: Keyring;
  let keys: QueueKeys;
  const made: SealedQueue[] = [];
  const logs = captureLog();

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'edgegw-qdmg-'));
    dir = join(root, 'data');
    ring = await Keyring.fromKeys({ key: randomBytes(32), file: '/etc/edgegw/queue.key' });
    keys = {
      current: ring.currentId,
      files: ring.files(),
      identify: (rec, salts) => ring.identify(rec, salts),
    };
  });
  afterEach(async () => {
    for (const q of made.splice(0)) await q.stop();
    await rm(root, { recursive: true, force: true });
  });

  function queue(readOnly = false): SealedQueue {
    const q = new SealedQueue({
      dir,
      maxBytes: 64 * 1024 * 1024,
      whenFull: 'drop-oldest',
      durability: 'fsync',
      seal: (seq, readings) => ring.seal(seq, readings),
      log: logs.log,
      keys,
      readOnly,
    });
    made.push(q);
    return q;
  }

  /** Three sessions of 5 records each, the first two acknowledged: tables, a log, a MANIFEST. */
  async function fill(): Promise<void> {
    for (let round = 0; round < 3; round++) {
      const q = queue();
      await q.start();
      for (let i = 0; i < 5; i++) await q.append(fixedReadings(2));
      await q.stop();
    }
    const q = queue();
    await q.start();
    await q.delete(1);
    await q.delete(2);
    await q.stop();
  }

  async function refusal(q: SealedQueue): Promise<EdgegwError> {
    const err = await q.start().then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(err instanceof EdgegwError, `expected a refusal, got ${String(err)}`);
    return err;
  }

  async function opened(): Promise<{ seqs: number[]; nextSeq: number }> {
    const q = queue();
    await q.start();
    const recs = await q.read(0, 100);
    for (const r of recs) ring.open(r, q.sealedBy(r.seq));
    const nextSeq = q.stats().nextSeq;
    await q.stop();
    return { seqs: recs.map((r) => r.seq), nextSeq };
  }

  const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

  it('a missing CURRENT is refused (never re-created), and repair recovers every record and the next seq', async () => {
    await fill();
    await unlink(join(dir, 'CURRENT'));
    const data = (await readdir(dir)).filter((n) => /\.(ldb|log)$/.test(n)).sort();
    const untouched = await snapshot(dir, 'content');

    const err = await refusal(queue());
    assert.equal(err.code, 'EDGEGW_E_QUEUE_DAMAGED');
    assert.equal(err.exitCode, Exit.UNAVAILABLE);
    assert.match(err.message, /edgegw queue repair/);
    assert.match(err.message, /CURRENT|does not exist/);
    // The tables and logs are all still there: nothing was re-created over them.
    assert.deepEqual((await readdir(dir)).filter((n) => /\.(ldb|log)$/.test(n)).sort(), data);
    // Refused before LevelDB opened it: not even its info log was rotated.
    assert.deepEqual(await snapshot(dir, 'content'), untouched);

    const before = await snapshot(dir, 'content');
    const r = await repairQueue(dir, keys);
    assert.equal(r.rebuilt, true);
    assert.deepEqual(await snapshot(r.backup, 'content'), before, 'the damaged files are kept as they were');
    assert.equal(dirname(r.backup), root);
    assert.ok(basename(r.backup).startsWith('data.damaged-'));
    assert.equal(r.kept, 13);
    assert.deepEqual(r.quarantined, []);
    // Above every seq the queue may have used before the damage (the seq mark), never back.
    assert.equal(r.nextSeq, 1 + MARK_STEP);
    assert.deepEqual(await opened(), { seqs: range(3, 15), nextSeq: 1 + MARK_STEP });
  });

  it('a deleted table file is refused; repair keeps what remains and the next seq never goes back', async () => {
    await fill();
    const table = (await readdir(dir)).filter((n) => n.endsWith('.ldb')).sort()[0]!;
    await unlink(join(dir, table));
    const err = await refusal(queue());
    assert.equal(err.code, 'EDGEGW_E_QUEUE_DAMAGED');
    assert.ok(err.message.includes(table), err.message);

    const r = await repairQueue(dir, keys);
    assert.equal(r.rebuilt, true);
    const after = await opened();
    assert.ok(after.seqs.length >= 1 && after.seqs.length < 13, `kept ${after.seqs.join(',')}`);
    assert.equal(after.seqs.at(-1), 15);
    assert.ok(after.nextSeq >= 16, `nextSeq ${after.nextSeq}`);
  });

  it('a lost table that held the newest records and the stored next seq: repair continues above the seq mark', async () => {
    await fill();
    // Everything, the meta included, into table files; then the damage takes all of them.
    const raw = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
    await raw.open();
    await (raw as unknown as { compactRange(a: Uint8Array, b: Uint8Array): Promise<void> }).compactRange(
      queueKey(KIND_RECORD, 0),
      Uint8Array.of(0xff),
    );
    await raw.close();
    for (const t of (await readdir(dir)).filter((n) => /\.(ldb|log)$/.test(n))) await unlink(join(dir, t));
    assert.equal((await readFile(join(dir, SEQ_MARK_FILE), 'utf8')).trim(), String(1 + MARK_STEP));

    const r = await repairQueue(dir, keys);
    assert.equal(r.kept, 0);
    assert.equal(r.nextSeq, 1 + MARK_STEP, 'seqs 1..15 were used: none of them is handed out again');
    const q = queue();
    await q.start();
    assert.equal(await q.append(fixedReadings(1)), 1 + MARK_STEP);
  });

  it('a truncated MANIFEST is refused; repair recovers every record', async () => {
    await fill();
    const manifest = (await readdir(dir)).find((n) => n.startsWith('MANIFEST-'))!;
    await truncate(join(dir, manifest), 10);
    assert.equal((await refusal(queue())).code, 'EDGEGW_E_QUEUE_DAMAGED');
    await repairQueue(dir, keys);
    assert.deepEqual(await opened(), { seqs: range(3, 15), nextSeq: 1 + MARK_STEP });
  });

  it('repair moves a record that fails authentication to the quarantine and keeps the rest', async () => {
    await fill();
    const raw = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
    await raw.open();
    const stored = await raw.get(queueKey(KIND_RECORD, 7));
    assert.ok(stored !== undefined, 'record 7 is on disk');
    const value = Uint8Array.from(stored);
    value[value.length - 2]! ^= 0x10;
    await raw.put(queueKey(KIND_RECORD, 7), value);
    await raw.close();
    const r = await repairQueue(dir, keys);
    assert.equal(r.rebuilt, false);
    assert.deepEqual(r.quarantined, [7]);
    const after = await opened();
    assert.deepEqual(after.seqs, [...range(3, 6), ...range(8, 15)]);
    const q = queue(true);
    await q.start();
    assert.equal(q.stats().quarantined, 1);
  });

  it('read-only opens change nothing in dataDir: a healthy queue, a damaged one, a missing one', async () => {
    await fill();
    const before = await snapshot(dir);
    const q = queue(true);
    await q.start();
    assert.equal(q.stats().records, 13);
    const verified = await q.verify((rec) => ring.open(rec, q.sealedBy(rec.seq)));
    assert.equal(verified.ok, 13);
    await q.stop();
    assert.deepEqual(await snapshot(dir), before, 'inspect/verify wrote nothing');

    await unlink(join(dir, 'CURRENT'));
    const damaged = await snapshot(dir);
    assert.equal((await refusal(queue(true))).code, 'EDGEGW_E_QUEUE_DAMAGED');
    assert.deepEqual(await snapshot(dir), damaged);

    const absent = join(root, 'never');
    const none = new SealedQueue({ ...queueOpts(absent), readOnly: true });
    made.push(none);
    await none.start();
    assert.equal(none.stats().records, 0);
    await assert.rejects(stat(absent), /ENOENT/, 'a read-only open does not create dataDir');
  });

  it('a read-only open of a queue in use says so instead of reading a live copy', async () => {
    await fill();
    const live = queue();
    await live.start();
    const err = await refusal(queue(true));
    assert.equal(err.code, 'EDGEGW_E_QUEUE_OPEN');
    assert.match(err.message, /in use/);
  });

  it('a non-empty folder that holds no queue is refused, not turned into one', async () => {
    await mkdir(dir);
    await writeFile(join(dir, 'notes.txt'), 'not a queue');
    const err = await refusal(queue());
    assert.equal(err.code, 'EDGEGW_E_QUEUE_OPEN');
    assert.match(err.message, /holds no queue/);
    assert.deepEqual(await readdir(dir), ['notes.txt']);
  });

  function queueOpts(d: string) {
    return {
      dir: d,
      maxBytes: 1024 * 1024,
      whenFull: 'drop-oldest' as const,
      durability: 'fsync' as const,
      seal: (seq: number, readings: Parameters<Keyring['seal']>[1]) => ring.seal(seq, readings),
      log: logs.log,
    };
  }
});
