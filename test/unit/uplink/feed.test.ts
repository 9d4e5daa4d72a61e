import assert from 'node:assert/strict';
import type { RecordSource } from '../../../src/types.js';
import { Feed } from '../../../src/uplink/feed.js';
import type { PackedMessage } from '../../../src/uplink/wire.js';
import { MemorySource } from './memory-source.js';

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

interface Sent {
  seqs: number[];
  live: boolean;
}

/** Publishes everything the feed has, as the uplink does with room to spare; `each` runs after every message. */
async function drain(
  feed: Feed,
  each: (m: PackedMessage, n: number) => void = () => undefined,
): Promise<Sent[]> {
  const sent: Sent[] = [];
  for (let guard = 0; guard < 100_000; guard++) {
    while (feed.liveWaiting) await feed.pull(0);
    for (let next = feed.peek(); next !== null && !feed.liveWaiting; next = feed.peek()) {
      feed.shift(next.live);
      sent.push({ seqs: next.msg.seqs, live: next.live });
      each(next.msg, sent.length);
    }
    if (!(await feed.pull(1))) return sent;
  }
  throw new Error('feed never ran dry');
}

function assertEachMessageInOrder(sent: readonly Sent[]): void {
  for (const m of sent)
    assert.deepEqual(
      m.seqs,
      [...m.seqs].sort((a, b) => a - b),
      'seq order within a message',
    );
}

describe('Feed (live cursor first, then the backlog)', () => {
  it('resize() repacks what is packed and unsent at the new size: nothing sent twice, nothing skipped', async () => {
    const source = new MemorySource();
    source.append(200);
    const feed = new Feed(source, 'gw', 4000);
    feed.restart();
    const sent: Sent[] = [];
    while (feed.peek() === null) await feed.pull(2); // a backlog message packed
    await feed.pull(2); // and more records pulled behind it
    const first = feed.peek()!;
    feed.shift(first.live); // one of them published
    sent.push({ seqs: first.msg.seqs, live: first.live });
    source.append(10); // live records committed, pulled and packed, not yet published
    feed.appended();
    while (feed.liveWaiting) await feed.pull(0);
    assert.ok(feed.peek()?.live, 'a live message waits packed');
    feed.resize(1000);
    const sizes: number[] = [];
    sent.push(...(await drain(feed, (m) => sizes.push(m.seqs.length > 1 ? m.payload.length : 0))));
    const seqs = sent.flatMap((m) => m.seqs).sort((a, b) => a - b);
    assert.deepEqual(seqs, range(1, 210), 'every seq once');
    assert.ok(
      sizes.every((b) => b <= 1000),
      'messages packed after resize() keep the new size',
    );
    assertEachMessageInOrder(sent);
  });

  it('resize() to another compression repacks what is unsent: compressed from then on, every seq once', async () => {
    const source = new MemorySource();
    source.append(300);
    const feed = new Feed(source, 'gw', 1000);
    feed.restart();
    while (feed.peek() === null) await feed.pull(2);
    await feed.pull(2); // more records packed plain behind it
    const first = feed.peek()!;
    feed.shift(first.live);
    const sent: Sent[] = [{ seqs: first.msg.seqs, live: first.live }];
    feed.resize(1000, 'deflate');
    const kinds: boolean[] = [];
    sent.push(...(await drain(feed, (m) => kinds.push(m.compressed && m.payload.length <= 1000))));
    assert.equal(first.msg.compressed, false);
    assert.ok(kinds.length > 0 && kinds.every(Boolean), 'every later message compressed, within the size');
    assert.deepEqual(
      sent.flatMap((m) => m.seqs).sort((a, b) => a - b),
      range(1, 300),
      'every seq once',
    );
    assertEachMessageInOrder(sent);
  });

  it('with no new records, drains the backlog oldest first, every seq once', async () => {
    const source = new MemorySource();
    source.append(200);
    const feed = new Feed(source, 'gw', 1000);
    feed.restart();
    const sent = await drain(feed);
    assert.deepEqual(
      sent.flatMap((m) => m.seqs),
      range(1, 200),
    );
    assert.ok(sent.every((m) => !m.live));
    assert.equal(feed.draining, false);
  });

  it('sends records committed after the split ahead of the rest of the backlog', async () => {
    const source = new MemorySource();
    source.append(300);
    const feed = new Feed(source, 'gw', 1000);
    feed.restart();
    let liveAt = -1;
    const sent = await drain(feed, (_m, n) => {
      if (n === 3) {
        source.append(4); // seqs 301-304 arrive three messages into the drain
        feed.appended();
        liveAt = n;
      }
    });
    const next = sent[liveAt]!;
    assert.equal(next.live, true, 'the very next message is the live one');
    assert.deepEqual(next.seqs, range(301, 304));
    const all = sent.flatMap((m) => m.seqs);
    assert.deepEqual(
      [...all].sort((a, b) => a - b),
      range(1, 304),
      'every seq exactly once in a session',
    );
    assert.ok(
      sent.slice(liveAt + 1).some((m) => !m.live),
      'the backlog continued after it',
    );
    assertEachMessageInOrder(sent);
  });

  it('alternates live and backlog messages while both are ready (live in every slot starved the drain)', async () => {
    const source = new MemorySource();
    source.append(200);
    const feed = new Feed(source, 'gw', 1000);
    feed.restart();
    const sent: Sent[] = [];
    // One publish slot at a time, as a quota-bound uplink has them; a new record every slot.
    for (let slot = 0; slot < 1000 && (feed.draining || sent.length === 0); slot++) {
      while (feed.liveWaiting) await feed.pull(0);
      while (await feed.pull(2)) if (feed.liveWaiting) break;
      const next = feed.peek();
      if (next === null) continue;
      feed.shift(next.live);
      sent.push({ seqs: next.msg.seqs, live: next.live });
      source.append(1);
      feed.appended();
    }
    assert.equal(feed.draining, false, 'the backlog drained while live records flowed');
    const backlogMessages = sent.filter((m) => !m.live).length;
    const liveMessages = sent.length - backlogMessages;
    assert.ok(backlogMessages > 0 && liveMessages > 0);
    for (let i = 1; i < sent.length; i++)
      assert.ok(!(sent[i - 1]!.live && sent[i]!.live), `two live messages in a row at ${i}`);
    assertEachMessageInOrder(sent);
    const all = sent.flatMap((m) => m.seqs);
    assert.equal(new Set(all).size, all.length, 'no seq twice');
    assert.ok(
      range(1, 200).every((q) => all.includes(q)),
      'every backlog seq sent',
    );
  });

  it('rewind after a disconnect resends everything unacknowledged, from both cursors', async () => {
    const source = new MemorySource();
    source.append(100);
    const feed = new Feed(source, 'gw', 600);
    feed.restart();
    const inFlight: number[][] = [];
    // Take a few backlog messages, then live ones; ack only the first message.
    const nextMessage = async () => {
      while (feed.liveWaiting || feed.peek() === null) assert.ok(await feed.pull(1), 'more to pull');
      return feed.peek()!;
    };
    for (let i = 0; i < 3; i++) {
      const n = await nextMessage();
      assert.equal(n.live, false);
      feed.shift(n.live);
      inFlight.push(n.msg.seqs);
    }
    source.append(5);
    feed.appended();
    const live = await nextMessage();
    assert.equal(live.live, true);
    feed.shift(true);
    inFlight.push(live.msg.seqs);
    for (const seq of inFlight.shift()!) await source.ack(seq);
    const lowest = Math.min(...inFlight.map((s) => s[0]!));
    feed.rewind(lowest);
    source.append(2); // committed during the outage: part of the next backlog
    feed.restart();
    const sent = await drain(feed);
    const again = sent.flatMap((m) => m.seqs).sort((a, b) => a - b);
    assert.deepEqual(
      again,
      [...source.records.keys()].sort((a, b) => a - b),
      'every unacked record, once',
    );
    assert.deepEqual(
      [...new Set([...source.acked, ...again])].sort((a, b) => a - b),
      range(1, 107),
    );
    assertEachMessageInOrder(sent);
  });

  it('ends the backlog region cleanly when its records were dropped, and the live cursor goes on', async () => {
    const source = new MemorySource();
    source.append(80);
    for (const seq of [...range(10, 20), ...range(70, 80)]) source.records.delete(seq); // dropped by policy
    const feed = new Feed(source, 'gw', 800);
    feed.restart();
    source.append(3);
    feed.appended();
    const sent = await drain(feed);
    assert.deepEqual(sent[0]?.seqs, [81, 82, 83]);
    assert.deepEqual(
      sent.flatMap((m) => m.seqs).sort((a, b) => a - b),
      [...range(1, 9), ...range(21, 69), 81, 82, 83],
    );
    assert.equal(feed.draining, false);
  });

  it('a record quarantined inside a backlog read does not end the region (it ends by seq)', async () => {
    const source = new MemorySource();
    source.append(60);
    source.tamper(5); // the first backlog read comes back one short
    source.tamper(40);
    const feed = new Feed(source, 'gw', 800);
    feed.restart();
    const sent = await drain(feed);
    assert.deepEqual(source.quarantined, [5, 40]);
    assert.deepEqual(
      sent.flatMap((m) => m.seqs),
      [...range(1, 4), ...range(6, 39), ...range(41, 60)],
      'every other backlog record, in one session',
    );
    assert.equal(feed.draining, false);
  });

  it('a record quarantined inside a live read does not stop the live cursor', async () => {
    const source = new MemorySource();
    const feed = new Feed(source, 'gw', 800);
    feed.restart();
    source.append(50);
    source.tamper(3);
    feed.appended();
    const sent = await drain(feed);
    assert.ok(sent.every((m) => m.live));
    assert.deepEqual(
      sent.flatMap((m) => m.seqs),
      [1, 2, ...range(4, 50)],
      'the live cursor read on past the short read without a new onAppend',
    );
  });

  it('a source without lastSeq and with short reads is still read to the end', async () => {
    const mem = new MemorySource();
    mem.append(70);
    mem.tamper(2);
    const source: RecordSource = {
      next: (a, l) => mem.next(a, l),
      ack: (s) => mem.ack(s),
      onAppend: (l) => mem.onAppend(l),
    };
    const feed = new Feed(source, 'gw', 500);
    feed.restart();
    feed.appended();
    const sent = await drain(feed);
    assert.deepEqual(
      sent.flatMap((m) => m.seqs),
      [1, ...range(3, 70)],
    );
  });

  it('a source without lastSeq is read oldest first through one cursor', async () => {
    const mem = new MemorySource();
    mem.append(50);
    const source: RecordSource = {
      next: (a, l) => mem.next(a, l),
      ack: (s) => mem.ack(s),
      onAppend: (l) => mem.onAppend(l),
    };
    const feed = new Feed(source, 'gw', 500);
    feed.restart();
    const sent = await drain(feed, (_m, n) => {
      if (n === 2) {
        mem.append(2);
        feed.appended();
      }
    });
    assert.deepEqual(
      sent.flatMap((m) => m.seqs),
      range(1, 52),
    );
  });

  it('drops a pull that was waiting on the source when a rewind happened', async () => {
    const source = new MemorySource();
    source.append(40);
    const feed = new Feed(source, 'gw', 100_000);
    feed.restart();
    const pending = feed.pull(1);
    feed.rewind(Infinity);
    await pending;
    assert.equal(feed.peek(), null, 'nothing from the stale pull');
    feed.restart();
    const sent = await drain(feed);
    assert.deepEqual(
      sent.flatMap((m) => m.seqs),
      range(1, 40),
    );
  });
});

describe('Feed.tail (a clean stop)', () => {
  it('serves the last few live records, never the backlog', async () => {
    const source = new MemorySource();
    source.append(100);
    const feed = new Feed(source, 'gw', 800);
    feed.restart(); // seqs 1..100 are the backlog
    source.append(3);
    feed.appended();
    assert.equal(feed.tail(8), true);
    const sent = await drain(feed);
    assert.deepEqual(
      sent.flatMap((m) => m.seqs),
      [101, 102, 103],
    );
    assert.ok(sent.every((m) => m.live));
  });

  it('serves nothing when more than `max` live records wait (they stay queued, like the backlog)', async () => {
    const source = new MemorySource();
    const feed = new Feed(source, 'gw', 800);
    feed.restart();
    source.append(50);
    feed.appended();
    assert.equal(feed.tail(8), false);
    assert.deepEqual(await drain(feed), []);
    feed.restart(); // the next connection sends them all again
    assert.deepEqual(
      (await drain(feed)).flatMap((m) => m.seqs),
      range(1, 50),
    );
  });
});
