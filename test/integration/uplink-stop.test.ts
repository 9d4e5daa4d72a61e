// SIGTERM with a backlog (issue 6, break 8; DESIGN.md §2.7), `edgegw run` as a child process: the
// broker holds PUBACKs so a backlog builds; on SIGTERM the daemon stops at once instead of waiting
// for the queue to empty, the in-flight PUBACKs (released a moment after the stop began) get their
// time, little is published after it (at most a window and what was packed), every undelivered
// seq stays queued, and a restart delivers every seq.

import assert from 'node:assert/strict';
import { runCli, startCli } from '../helpers/cli.js';
import { decodeWire, waitFor, type TestSite, subscribedSite } from '../helpers/site.js';

interface Inspect {
  records: number;
  firstSeq: number | null;
  nextSeq: number;
}

describe('edgegw run: SIGTERM with a backlog (child process)', function () {
  this.timeout(90_000);
  const fixture = subscribedSite({
    sensors: '  - { id: counter-1, sim: { wave: counter }, every: 10ms }',
    flush: '20ms',
    extraUplink: '  limits: { inflight: 4 }',
    logLevel: 'info',
  });
  const messages = fixture.messages;
  let site: TestSite;
  beforeEach(() => {
    site = fixture.site;
  });

  const seqs = () => [...new Set(messages.flatMap(decodeWire).map((r) => r.seq))].sort((a, b) => a - b);

  it('stops within a bounded time, lets in-flight PUBACKs arrive, leaves the backlog queued, loses nothing', async () => {
    const broker = site.broker;
    broker.pauseAcks();
    const run = startCli(['run', '-c', site.configFile]);
    let stdout = '';
    run.child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    await waitFor(() => broker.outstanding().includes(4), 20_000, 'a full in-flight window');
    await waitFor(
      async () => {
        const r = await runCli(['status', '--json', '-c', site.configFile]);
        return r.code === 0 && (JSON.parse(r.stdout) as { queue: Inspect }).queue.records >= 150;
      },
      30_000,
      'a backlog of 150 records',
    );
    const publishedBefore = broker.published.messages;
    const t0 = Date.now();
    run.child.kill('SIGTERM');
    // The broker is slow, not dead: the held PUBACKs go out once the daemon has begun to stop.
    await waitFor(() => stdout.includes('"stopping"'), 10_000, 'the daemon stopping');
    broker.resumeAcks();
    const r = await run.done;
    const stopMs = Date.now() - t0;
    assert.equal(r.code, 0, r.stderr);
    assert.ok(stopMs < 3000, `stopped in ${stopMs} ms (the drain window is 5 s)`);
    // At most a window and the live tail: the acks may resume just before the uplink's own stop.
    const sentAfter = broker.published.messages - publishedBefore;
    assert.ok(sentAfter <= 12, `${sentAfter} messages published after SIGTERM: the backlog was not drained`);
    assert.equal(broker.published.acksSent, broker.published.messages, 'every publish got its PUBACK');

    const after = JSON.parse(
      (await runCli(['queue', 'inspect', '--json', '-c', site.configFile])).stdout,
    ) as Inspect;
    const sent = new Set(seqs());
    // What was packed before the acks resumed may go out (one message can hold this whole backlog
    // of small records), and a stall's rewind can send live records ahead of older ones, so the
    // check is by seq: every committed seq not delivered is still queued, none deleted without its
    // PUBACK, and every delivered one was deleted.
    const unsent = Array.from({ length: after.nextSeq - 1 }, (_, i) => i + 1).filter((q) => !sent.has(q));
    assert.equal(
      after.records,
      unsent.length,
      `the undelivered backlog stayed queued (${after.records} records, next seq ${after.nextSeq}, ${sent.size} sent)`,
    );
    assert.equal(
      after.firstSeq,
      unsent[0] ?? null,
      `the acknowledged in-flight records were deleted (first queued ${after.firstSeq}, first unsent ${unsent[0]})`,
    );
    assert.ok(
      stdout.split('\n').some((l) => l.includes('edgegw stopped')),
      'the stop was clean',
    );

    // Nothing lost: a restart delivers every committed seq.
    const last = after.nextSeq - 1;
    const again = startCli(['run', '-c', site.configFile]);
    try {
      await waitFor(
        () => {
          const s = seqs();
          return s.length >= last && s[last - 1] === last;
        },
        30_000,
        `every seq up to ${last} at the subscriber`,
      );
    } finally {
      again.child.kill('SIGTERM');
      assert.equal((await again.done).code, 0);
    }
    assert.deepEqual(
      seqs().slice(0, last),
      Array.from({ length: last }, (_, i) => i + 1),
    );
  });
});
