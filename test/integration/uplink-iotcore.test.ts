// The uplink against the IoT-Core-like broker (src/demo/broker.ts with `iotcore`): IoT Core's
// per-connection rules enforced in front of aedes over real TLS, MQTT 3.1.1 and 5. A saturating
// drain with the shipped limits makes the broker discard nothing, plain or compressed; under MQTT 5
// a broker that refuses publishes (PUBACK 0x97) loses nothing, slows the uplink down, and the pace
// recovers; the broker's Receive Maximum caps the in-flight window. Payloads are decoded by the
// test's own node:zlib + JSON.parse (parseWire), never by the gateway's code.

import assert from 'node:assert/strict';
import { createDemoPki, type DemoPki } from '../../src/demo/pki.js';
import { startTlsBroker, type TlsBroker } from '../../src/demo/broker.js';
import type { Uplink, UplinkLimits } from '../../src/uplink/uplink.js';
import { parseWire, waitFor } from '../helpers/site.js';
import { MemorySource } from '../unit/uplink/memory-source.js';
import { GW, makeUplink } from './uplink-support.js';

/** The shipped defaults (uplink.limits): IoT Core's quotas. */
const SHIPPED: UplinkLimits = {
  publishesPerSecond: 100,
  bytesPerSecond: 512 * 1024,
  maxPayloadBytes: 128 * 1024,
  inflight: 16,
};

describe('uplink against the IoT-Core-like broker (TLS, aedes)', function () {
  this.timeout(90_000);
  let pki: DemoPki;
  let broker: TlsBroker | null = null;
  let uplink: Uplink | null = null;
  const seqs: number[] = [];
  const framing = new Set<string>();

  before(() => {
    pki = createDemoPki(GW);
  });
  afterEach(async () => {
    await uplink?.stop(0);
    uplink = null;
    await broker?.close();
    broker = null;
  });

  async function start(opts: Parameters<typeof startTlsBroker>[0]): Promise<TlsBroker> {
    seqs.length = 0;
    framing.clear();
    const b = await startTlsBroker(opts);
    b.aedes.on('publish', (packet, client) => {
      if (client?.id !== GW) return;
      const payload = Buffer.from(packet.payload);
      framing.add(payload[0] === 0x7b ? 'plain' : 'zlib');
      for (const r of parseWire(payload).recs) seqs.push(r.seq);
    });
    broker = b;
    return b;
  }

  const assertEverySeq = (source: MemorySource): void => {
    const all = Array.from({ length: source.committed }, (_, i) => i + 1);
    assert.deepEqual(
      [...new Set(seqs)].sort((a, b) => a - b),
      all,
      'every seq delivered',
    );
    assert.equal(source.records.size, 0, 'the source ends empty');
  };

  for (const [compression, protocol, records] of [
    ['none', '3.1.1', 5000],
    ['deflate', '5', 40000],
  ] as const) {
    it(`drains a backlog at the shipped limits (${compression}, MQTT ${protocol}) and the broker discards nothing`, async () => {
      const b = await start({ pki, iotcore: true });
      const source = new MemorySource();
      // ~3 s of the byte quota: enough to saturate it for a while.
      source.append(records, 20);
      uplink = makeUplink(b, pki, source, { limits: SHIPPED, compression, protocol });
      await uplink.start();
      await waitFor(() => source.records.size === 0, 60_000, 'the backlog drained');
      assertEverySeq(source);
      assert.deepEqual([...framing], [compression === 'none' ? 'plain' : 'zlib']);
      assert.equal(b.rules.discarded, 0, 'no publish over 100/s');
      assert.equal(b.rules.refusedConnects, 0);
      assert.equal(b.rules.refusedPayload + b.rules.refusedTopic, 0);
      assert.equal(uplink.state().pace?.refused, 0);
      assert.ok(b.published.bytes > 2 * 512 * 1024, 'the drain was long enough to meet the byte quota');
    });
  }

  it('MQTT 5: publishes refused with 0x97 are not lost; the pace drops, then recovers', async () => {
    // The broker allows 20 publishes/s while the uplink is told 100: it must find the pace itself.
    const b = await start({ pki, iotcore: { publishesPerSecond: 20 } });
    const source = new MemorySource();
    source.append(300, 5);
    uplink = makeUplink(b, pki, source, {
      protocol: '5',
      limits: { ...SHIPPED, maxPayloadBytes: 256 },
    });
    await uplink.start();
    let lowest = 1;
    await waitFor(
      () => {
        lowest = Math.min(lowest, uplink!.state().pace?.factor ?? 1);
        return source.records.size === 0;
      },
      60_000,
      'everything delivered despite the refusals',
    );
    assertEverySeq(source);
    assert.ok(b.rules.discarded > 0, 'the broker did refuse publishes');
    assert.ok((uplink.state().pace?.refused ?? 0) > 0, 'the uplink saw the refusals');
    assert.ok(lowest < 1, `the pace dropped (lowest ${lowest})`);
    assert.equal(uplink.state().state, 'connected', 'a refusal is no reason to reconnect');
    await waitFor(() => uplink!.state().pace?.factor === 1, 20_000, 'the pace back at the limits');
    assert.equal(uplink.state().pace?.reason, null);
  });

  it("MQTT 5: the broker's Receive Maximum caps the in-flight window", async () => {
    const b = await start({ pki, iotcore: true, mqtt5: { receiveMaximum: 3 } });
    b.pauseAcks();
    const source = new MemorySource();
    source.append(50, 5);
    uplink = makeUplink(b, pki, source, { protocol: '5', limits: { ...SHIPPED, maxPayloadBytes: 256 } });
    await uplink.start();
    await waitFor(() => b.published.messages >= 3, 10_000, 'the window filled');
    // Held PUBACKs: the window stays full; nothing beyond the broker's 3 may be sent.
    await waitFor(() => uplink!.state().inflight === 3, 5000, 'three in flight');
    assert.equal(b.published.maxOutstanding, 3, 'never more than the Receive Maximum unacknowledged');
    b.resumeAcks();
    await waitFor(() => source.records.size === 0, 30_000, 'drained after the acks resumed');
    assert.equal(b.published.maxOutstanding, 3);
    assertEverySeq(source);
  });
});
