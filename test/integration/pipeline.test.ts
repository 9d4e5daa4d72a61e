// The walking skeleton end to end, in process: sim sensor → batcher → sealed record → LevelDB
// queue → mqtt.js over real TLS with a client certificate → aedes → subscriber; PUBACK deletes.

import assert from 'node:assert/strict';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/load.js';
import { Daemon } from '../../src/daemon.js';
import { SealedQueue } from '../../src/queue/sealed-queue.js';
import { decodeWire, makeSite, quietLog, waitFor, type TestSite, type WireMessage } from '../helpers/site.js';

describe('pipeline (sim → seal → LevelDB → MQTT/TLS → broker)', function () {
  this.timeout(30_000);
  let site: TestSite;

  beforeEach(async () => {
    site = await makeSite();
  });
  afterEach(async () => {
    await site.cleanup();
  });

  it('delivers contiguous seqs with the counter values in order, then leaves the queue empty', async () => {
    const messages: WireMessage[] = [];
    const unsubscribe = await site.broker.subscribe(site.topic, (payload: Buffer) => {
      messages.push(JSON.parse(payload.toString('utf8')) as WireMessage);
    });
    const loaded = await loadConfig(site.configFile);
    const daemon = new Daemon({ loaded, log: quietLog() });
    await daemon.start();
    await waitFor(() => decodeWire_(messages).length >= 40, 15_000, '40 readings at the subscriber');
    await daemon.stop();
    await unsubscribe();

    const readings = decodeWire_(messages);
    // By seq, not arrival: a reconnect's backlog goes out after live records.
    const seqs = [...new Set(readings.map((r) => r.seq))].sort((a, b) => a - b);
    assert.equal(seqs[0], 1, 'the first record of a new queue is seq 1');
    seqs.forEach((s, i) => assert.equal(s, i + 1, `seq ${s} at position ${i} is not contiguous`));
    const counter = readings
      .filter((r) => r.sensor === 'counter-1')
      .sort((a, b) => a.seq - b.seq || a.ts - b.ts);
    const values = [...new Map(counter.map((r) => [`${r.seq}/${r.ts}`, r.value])).values()];
    values.forEach((v, i) => assert.equal(v, i, `counter reading ${i} is ${String(v)}`));
    assert.ok(readings.every((r) => r.quality === 'good'));
    for (const m of messages) {
      assert.equal(m.v, 1);
      assert.equal(m.gw, 'test-gw1');
    }

    // A clean stop commits the last readings and sends them: every record was acknowledged and
    // deleted, and every committed reading counted as delivered.
    const snap = daemon.status.snapshot();
    assert.equal(snap.counters.delivered, snap.counters.committed);
    assert.ok(snap.counters.committed >= 40);
    const queue = new SealedQueue({
      dir: loaded.config.gateway.dataDir,
      maxBytes: loaded.config.queue.maxBytes,
      whenFull: 'drop-oldest',
      durability: 'fsync',
      seal: () => {
        throw new Error('read only');
      },
      log: pino({ level: 'silent' }),
    });
    await queue.start();
    const stats = queue.stats();
    await queue.stop();
    assert.equal(stats.records, 0, 'the queue is empty after a clean stop');
    assert.equal(stats.readings, 0);
    assert.ok(stats.nextSeq > seqs.at(-1)!, 'nextSeq continues after the last delivered seq');
  });
});

function decodeWire_(messages: WireMessage[]) {
  return messages.flatMap(decodeWire);
}
