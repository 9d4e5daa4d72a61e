// The uplink when faults meet (issue 6, breaks 1, 4 and 12), against the real test broker over TLS,
// each run against the in-memory source and the real queue (SealedQueue + QueueRecordSource +
// libsodium): a quarantined record inside a backlog, PUBACKs the broker withholds, and two gateways
// sharing one client id.

import assert from 'node:assert/strict';
import { createDemoPki, type DemoPki } from '../../src/demo/pki.js';
import { startTlsBroker, type TlsBroker } from '../../src/demo/broker.js';
import type { Uplink } from '../../src/uplink/uplink.js';
import { TAKEOVER_AFTER } from '../../src/uplink/link-health.js';
import { waitFor } from '../helpers/site.js';
import { captureLog } from '../helpers/queue.js';
import { HARNESSES, memoryHarness, type SourceHarness } from '../helpers/record-sources.js';
import { GW, makeUplink, recordPublishes } from './uplink-support.js';

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);
const unique = (xs: readonly number[]): number[] => [...new Set(xs)].sort((a, b) => a - b);

for (const { name, make } of HARNESSES) {
  describe(`uplink faults (aedes, TLS): ${name}`, function () {
    this.timeout(60_000);
    let pki: DemoPki;
    let broker: TlsBroker;
    let h: SourceHarness | null = null;
    let uplink: Uplink | null = null;
    const seen = { seqs: [] as number[], at: [] as number[], bytes: [] as number[] };

    before(() => {
      pki = createDemoPki(GW);
    });
    beforeEach(async () => {
      broker = await startTlsBroker({ pki });
      seen.seqs.length = seen.at.length = seen.bytes.length = 0;
      recordPublishes(broker, seen);
    });
    afterEach(async () => {
      await uplink?.stop(0);
      uplink = null;
      await h?.close();
      h = null;
      await broker.close();
    });

    it('a tampered record in a 60-record backlog: every other record is delivered without a reconnect', async () => {
      h = await make({ records: 60, readings: 5, tamper: [7] });
      uplink = makeUplink(broker, pki, h.source, {
        // Several records per message, several pulls per backlog.
        limits: { publishesPerSecond: 10_000, bytesPerSecond: 1e8, maxPayloadBytes: 600, inflight: 4 },
      });
      await uplink.start();
      const harness = h;
      await waitFor(async () => (await harness.held()) === 0, 15_000, 'the backlog drained');
      assert.deepEqual(h.quarantined, [7]);
      assert.deepEqual(unique(seen.seqs), [...range(1, 6), ...range(8, 60)]);
      assert.deepEqual(unique(h.acked), [...range(1, 6), ...range(8, 60)]);
      assert.equal(broker.published.connections, 1, 'no reconnect was needed');
      // Live records still flow after the backlog.
      await h.append(3);
      await waitFor(() => range(61, 63).every((s) => seen.seqs.includes(s)), 10_000, 'live records');
    });

    it('one PUBACK in 20 withheld: the ack timeout reconnects and resends, status shows the stall, all delivered', async () => {
      const records = 450; // 2,250 readings
      h = await make({ records, readings: 5 });
      broker.dropEveryNthAck(20);
      uplink = makeUplink(broker, pki, h.source, {
        limits: { publishesPerSecond: 10_000, bytesPerSecond: 1e8, maxPayloadBytes: 160, inflight: 16 },
        ackTimeoutMs: 1000,
      });
      const errors = new Set<string>();
      const watcher = setInterval(() => {
        const e = uplink?.state().lastError;
        if (e) errors.add(e.split(':')[0]!);
      }, 20);
      try {
        await uplink.start();
        const harness = h;
        await waitFor(async () => (await harness.held()) === 0, 45_000, 'every record acknowledged');
      } finally {
        clearInterval(watcher);
      }
      assert.deepEqual(unique(h.acked), range(1, records));
      assert.deepEqual(unique(seen.seqs), range(1, records));
      assert.ok(
        errors.has('EDGEGW_E_UPLINK_STALLED'),
        `status showed the stall (saw ${[...errors].join(', ')})`,
      );
      assert.match(
        uplink.state().lastError ?? '',
        /^EDGEGW_E_UPLINK_STALLED: no PUBACK for seq \d+ within 1 s/,
      );
      assert.ok(broker.published.connections >= 2, 'it reconnected to resend');
    });
  });
}

describe('two gateways with the same id (aedes, TLS)', function () {
  this.timeout(60_000);
  let pki: DemoPki;
  let broker: TlsBroker;
  const uplinks: Uplink[] = [];
  const harnesses: SourceHarness[] = [];

  before(() => {
    pki = createDemoPki(GW);
  });
  beforeEach(async () => {
    broker = await startTlsBroker({ pki });
  });
  afterEach(async () => {
    for (const u of uplinks.splice(0)) await u.stop(0);
    for (const s of harnesses.splice(0)) await s.close();
    await broker.close();
  });

  it('take each other over with a growing backoff, and say so in status and the log', async () => {
    const logs = [captureLog(), captureLog()];
    for (const logged of logs) {
      const harness = await memoryHarness({ records: 0 });
      harnesses.push(harness);
      uplinks.push(
        makeUplink(broker, pki, harness.source, {
          log: logged.log,
          backoff: { minMs: 100, maxMs: 5000, random: () => 0.999999 },
        }),
      );
    }
    for (const u of uplinks) await u.start();
    const retries = (i: number): number[] =>
      logs[i]!.lines.filter((l) => l.msg === 'uplink disconnected').map((l) => Number(l.retryMs));
    await waitFor(() => retries(0).length >= 5 && retries(1).length >= 5, 30_000, 'five takeovers each');
    for (const i of [0, 1]) {
      const r = retries(i).slice(0, 5);
      // On each CONNACK the old code went back to the first window: 100 ms every time.
      assert.ok(
        r.every((ms, k) => k === 0 || ms > r[k - 1]!),
        `gateway ${i}: each takeover widens the backoff (${r.join(', ')} ms)`,
      );
      const takeover = logs[i]!.lines.find((l) => l.code === 'EDGEGW_E_UPLINK_TAKEOVER');
      assert.ok(takeover, `gateway ${i} logged the takeover`);
      assert.ok(Number(takeover.shortLived) >= TAKEOVER_AFTER);
    }
    assert.ok(
      uplinks.some((u) => (u.state().lastError ?? '').startsWith('EDGEGW_E_UPLINK_TAKEOVER')),
      `status names the takeover (${uplinks.map((u) => u.state().lastError).join(' | ')})`,
    );
  });
});
