// Uplink.reconfigure() (a reload) against real TLS brokers: limits and topic change in place (no
// reconnect, nothing sent twice, the new size and topic used from then on); a new broker URL
// reconnects there and nothing unacknowledged is lost.

import assert from 'node:assert/strict';
import { createDemoPki, type DemoPki } from '../../src/demo/pki.js';
import { startTlsBroker, type TlsBroker } from '../../src/demo/broker.js';
import type { Uplink, UplinkSettings } from '../../src/uplink/uplink.js';
import { waitFor } from '../helpers/site.js';
import { MemorySource } from '../unit/uplink/memory-source.js';
import { GW, makeUplink, recordPublishes } from './uplink-support.js';

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

describe('uplink reconfigure (reload)', function () {
  this.timeout(30_000);
  let pki: DemoPki;
  const brokers: TlsBroker[] = [];
  let uplink: Uplink | null = null;

  before(() => {
    pki = createDemoPki(GW);
  });
  afterEach(async () => {
    await uplink?.stop(0);
    uplink = null;
    for (const b of brokers.splice(0)) await b.close();
  });

  function settings(broker: TlsBroker, over: Partial<UplinkSettings> = {}): UplinkSettings {
    return {
      url: broker.url,
      topic: 'dt/edgegw/{gateway}/telemetry',
      keepaliveMs: 30_000,
      limits: {
        publishesPerSecond: 10_000,
        bytesPerSecond: 100 * 1024 * 1024,
        maxPayloadBytes: 4096,
        inflight: 8,
      },
      backoff: { minMs: 50, maxMs: 300 },
      tls: {
        ca: Buffer.from(pki.caCert),
        cert: Buffer.from(pki.clientCert),
        key: Buffer.from(pki.clientKey),
      },
      ...over,
    };
  }

  it('applies new limits and topic in place: no reconnect, no record twice, new size and topic from then on', async () => {
    const broker = await startTlsBroker({ pki });
    brokers.push(broker);
    const seen = { seqs: [] as number[], at: [] as number[], bytes: [] as number[] };
    recordPublishes(broker, seen);
    const onNew: number[] = [];
    const unsubscribe = await broker.subscribe('dt/new/test-gw1', (p) => {
      const m = JSON.parse(p.toString()) as { recs: { seq: number }[]; ids: string[] };
      for (const r of m.recs) onNew.push(r.seq);
    });
    const source = new MemorySource();
    source.append(400);
    uplink = makeUplink(broker, pki, source);
    broker.pauseAcks(); // a full window in flight, messages packed behind it, when the reload comes
    await uplink.start();
    // Seen by the broker too, not only sent: one still on its way would count as sent after the reload.
    await waitFor(
      () => uplink!.state().inflight === 8 && seen.bytes.length === 8,
      10_000,
      'a full window at the broker',
    );
    const connections = broker.published.connections;
    const before = seen.seqs.length;
    const beforeMessages = seen.bytes.length;
    const changed = uplink.reconfigure(
      settings(broker, {
        topic: 'dt/new/{gateway}',
        limits: {
          publishesPerSecond: 10_000,
          bytesPerSecond: 100 * 1024 * 1024,
          maxPayloadBytes: 2048,
          inflight: 4,
        },
      }),
    );
    assert.equal(changed.reconnected, false);
    broker.resumeAcks();
    await waitFor(() => source.records.size === 0, 15_000, 'all records acked');
    assert.equal(broker.published.connections, connections, 'no new connection');
    assert.deepEqual(
      [...seen.seqs].sort((a, b) => a - b),
      range(400),
      'every record once, none twice',
    );
    const later = seen.bytes.slice(beforeMessages);
    assert.ok(
      later.length > 0 && Math.max(...later) <= 2048,
      'messages published after it respect the new size',
    );
    const after = seen.seqs.slice(before).sort((x, y) => x - y);
    await waitFor(() => onNew.length >= after.length, 10_000, 'the subscriber of the new topic');
    assert.ok(after.length > 0);
    assert.deepEqual(
      [...onNew].sort((x, y) => x - y),
      after,
      'everything published after it went to the new topic',
    );
    assert.ok(broker.published.maxOutstanding <= 8);
    await unsubscribe();
  });

  it('a new broker URL reconnects there; what was in flight is resent, nothing lost', async () => {
    const a = await startTlsBroker({ pki });
    const b = await startTlsBroker({ pki });
    brokers.push(a, b);
    const atB = { seqs: [] as number[], at: [] as number[], bytes: [] as number[] };
    recordPublishes(b, atB);
    const source = new MemorySource();
    source.append(100);
    uplink = makeUplink(a, pki, source);
    a.pauseAcks();
    await uplink.start();
    await waitFor(() => uplink!.state().inflight > 0, 10_000, 'publishes in flight at the old broker');
    assert.equal(uplink.reconfigure(settings(b)).reconnected, true);
    await waitFor(() => source.records.size === 0, 15_000, 'everything acked by the new broker');
    assert.deepEqual(
      [...new Set(atB.seqs)].sort((x, y) => x - y),
      range(100),
    );
    assert.equal(uplink.state().broker, `localhost:${b.port}`);
    assert.equal(uplink.state().state, 'connected');
  });
});
