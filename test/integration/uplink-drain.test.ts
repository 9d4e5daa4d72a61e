// Live records ahead of a backlog (DESIGN.md §7 "Under IoT Core's quotas"), against a real aedes
// broker over real TLS: a pre-filled backlog drains under a slow byte quota while new records
// arrive; the new ones are delivered before the backlog is done, and nothing is skipped or lost,
// across reconnects too.

import assert from 'node:assert/strict';
import { createDemoPki, type DemoPki } from '../../src/demo/pki.js';
import { startTlsBroker, type TlsBroker } from '../../src/demo/broker.js';
import type { Uplink, UplinkLimits } from '../../src/uplink/uplink.js';
import { waitFor } from '../helpers/site.js';
import { MemorySource } from '../unit/uplink/memory-source.js';
import { GW, makeUplink, recordPublishes } from './uplink-support.js';

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);
/** ~16 KB/s of frames after the margins: a 300-record backlog of 20 readings takes ~5 s. */
const SLOW: UplinkLimits = {
  publishesPerSecond: 1000,
  bytesPerSecond: 20_000,
  maxPayloadBytes: 4096,
  inflight: 8,
};
const BACKLOG = 300;

describe('uplink drain: live records first (aedes, TLS)', function () {
  this.timeout(60_000);
  let pki: DemoPki;
  let broker: TlsBroker;
  let uplink: Uplink | null = null;
  let timer: NodeJS.Timeout | null = null;
  const seen = { seqs: [] as number[], at: [] as number[], bytes: [] as number[] };
  const messages: number[][] = [];

  before(() => {
    pki = createDemoPki(GW);
  });
  beforeEach(async () => {
    broker = await startTlsBroker({ pki });
    seen.seqs.length = seen.at.length = seen.bytes.length = messages.length = 0;
    recordPublishes(broker, seen);
    broker.aedes.on('publish', (packet, client) => {
      if (client?.id !== GW) return;
      const m = JSON.parse(packet.payload.toString()) as { recs: { seq: number }[] };
      messages.push(m.recs.map((r) => r.seq));
    });
  });
  afterEach(async () => {
    if (timer) clearInterval(timer);
    timer = null;
    await uplink?.stop(0);
    uplink = null;
    await broker.close();
  });

  const backlogLeft = (source: MemorySource): number =>
    [...source.records.keys()].filter((s) => s <= BACKLOG).length;

  function assertAllDelivered(source: MemorySource): void {
    const all = range(source.committed);
    assert.equal(source.records.size, 0, 'the source ends empty');
    assert.deepEqual(
      [...new Set(seen.seqs)].sort((a, b) => a - b),
      all,
      'every seq delivered at least once',
    );
    assert.deepEqual(
      [...new Set(source.acked)].sort((a, b) => a - b),
      all,
      'every seq acked',
    );
    for (const m of messages) {
      assert.deepEqual(
        m,
        [...m].sort((a, b) => a - b),
        'records in seq order within a message',
      );
    }
  }

  it('delivers records appended during a drain before the backlog is done, under the byte quota', async () => {
    const source = new MemorySource();
    source.append(BACKLOG, 20);
    uplink = makeUplink(broker, pki, source, { limits: SLOW });
    await uplink.start();
    await waitFor(() => source.acked.length >= 20, 15_000, 'the drain under way');
    source.append(5, 20); // seqs 301..305: live
    await waitFor(() => range(5).every((i) => seen.seqs.includes(BACKLOG + i)), 10_000, 'live records seen');
    const left = backlogLeft(source);
    assert.ok(left >= 100, `live records went ahead of the backlog (${left} backlog records still queued)`);
    await waitFor(() => source.records.size === 0, 30_000, 'the backlog drained');
    assertAllDelivered(source);
    let worst = 0;
    for (let i = 0; i < seen.at.length; i++) {
      let sum = 0;
      for (let j = i; j < seen.at.length && seen.at[j]! < seen.at[i]! + 1000; j++) sum += seen.bytes[j]!;
      worst = Math.max(worst, sum);
    }
    assert.ok(worst <= SLOW.bytesPerSecond, `${worst} payload bytes in one second`);
  });

  it('reconnects mid-drain with both cursors active: nothing skipped, live still first', async () => {
    const source = new MemorySource();
    source.append(BACKLOG, 20);
    uplink = makeUplink(broker, pki, source, { limits: SLOW });
    await uplink.start();
    timer = setInterval(() => source.append(1, 20), 100); // live records all along
    for (const acked of [30, 60]) {
      await waitFor(
        () => source.acked.length >= acked && seen.seqs.some((s) => s > BACKLOG),
        15_000,
        'backlog and live records both in flight',
      );
      const connections = broker.published.connections;
      broker.dropConnections();
      await waitFor(
        () => broker.published.connections > connections && uplink!.state().state === 'connected',
        10_000,
        'reconnected',
      );
      // Records appended from now on are live in the new session: they go ahead of the backlog.
      const mark = source.committed;
      await waitFor(() => seen.seqs.some((s) => s > mark), 10_000, 'a live record after the reconnect');
      assert.ok(backlogLeft(source) > 0, 'the backlog was not finished when the new live record went');
    }
    clearInterval(timer);
    timer = null;
    await waitFor(() => source.records.size === 0, 40_000, 'everything drained');
    assertAllDelivered(source);
    assert.ok(broker.published.connections >= 3, 'the uplink reconnected after each drop');
  });
});
