// When the queue compacts the records it removed (store.ts): once a write buffer's worth of their
// bytes is gone, not after a count of deletes (every 10,000 made a drain write ~20× what it
// removed), into tables of 1 MiB (disk.ts). LevelDB's own LOG says when a manual compaction ran
// and what it wrote; a stop waits for one in flight.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TABLE_FILE_SIZE, writeBufferSize } from '../../../src/queue/disk.js';
import { fixedReadings, queueFixture, type QueueFixture } from '../../helpers/queue.js';

/** The LevelDB LOG of the queue's last open. */
function leveldbLog(dir: string): Promise<string> {
  return readFile(join(dir, 'LOG'), 'utf8');
}

describe('queue compaction of removed records', function () {
  this.timeout(60_000);
  // 16 MiB of queue: a 1 MiB write buffer (disk.ts).
  const MAX_BYTES = 16 * 1024 * 1024;
  let fx: QueueFixture;
  beforeEach(async () => {
    fx = await queueFixture();
  });
  afterEach(() => fx.cleanup());

  it('12,000 small records removed (under a write buffer of bytes): no compaction; 1.4 MB more removed: a compaction into tables of at most 1 MiB', async () => {
    assert.equal(writeBufferSize(MAX_BYTES), 1024 * 1024);
    const q = fx.make({ maxBytes: MAX_BYTES, durability: 'os', ...fx.indexed });
    await q.start();
    for (let i = 0; i < 12_000; i++) await q.append(fixedReadings(1));
    const small = q.stats().bytes;
    assert.ok(small < 1024 * 1024, `12,000 one-reading records take ${small} bytes`);
    for (let seq = 1; seq <= 12_000; seq++) await q.delete(seq);
    assert.equal(q.stats().records, 0);
    await q.stop(); // waits for a compaction in flight
    assert.doesNotMatch(await leveldbLog(fx.dir), /Manual compaction/, 'none for ~0.5 MB removed');

    const again = fx.make({ maxBytes: MAX_BYTES, durability: 'os', ...fx.indexed });
    await again.start();
    const first = again.stats().nextSeq;
    for (let i = 0; i < 1200; i++) await again.append(fixedReadings(300));
    const large = again.stats().bytes;
    assert.ok(large > 1024 * 1024, `1,200 records of 300 readings take ${large} bytes`);
    for (let seq = first; seq < first + 1200; seq++) await again.delete(seq);
    await again.stop();
    const log = await leveldbLog(fx.dir);
    assert.match(log, /Manual compaction/, 'a compaction once 1 MiB of records was removed');
    const generated = [...log.matchAll(/Generated table #\d+@\d+: \d+ keys, (\d+) bytes/g)].map((m) =>
      Number(m[1]),
    );
    assert.ok(generated.length > 0, 'the compaction wrote tables');
    // LevelDB closes a table once it reaches the size, after the block that passed it.
    for (const size of generated) assert.ok(size <= TABLE_FILE_SIZE + 64 * 1024, `a table of ${size} bytes`);
  });
});
