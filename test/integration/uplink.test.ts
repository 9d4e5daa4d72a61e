// The uplink against a real aedes broker over real TLS with client certificates (127.0.0.1).

import assert from 'node:assert/strict';
import net from 'node:net';
import { createDemoPki, type DemoPki } from '../../src/demo/pki.js';
import { startTlsBroker, type TlsBroker } from '../../src/demo/broker.js';
import type { Uplink } from '../../src/uplink/uplink.js';
import { waitFor } from '../helpers/site.js';
import { MemorySource } from '../unit/uplink/memory-source.js';
import { GW, TOPIC, makeUplink, recordPublishes } from './uplink-support.js';

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

describe('uplink over MQTT/TLS (aedes)', function () {
  this.timeout(30_000);
  let pki: DemoPki;
  let broker: TlsBroker;
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
    await broker.close();
  });

  it('delivers every record, contiguous seqs, to a subscriber; acks remove them', async () => {
    const got: { seq: number; values: number[] }[] = [];
    const unsubscribe = await broker.subscribe(TOPIC, (payload) => {
      const m = JSON.parse(payload.toString()) as { gw: string; recs: { seq: number; r: number[][] }[] };
      assert.equal(m.gw, GW);
      for (const r of m.recs) got.push({ seq: r.seq, values: r.r.map((e) => e[2]!) });
    });
    const source = new MemorySource();
    source.append(300);
    let delivered = 0;
    let messages = 0;
    uplink = makeUplink(broker, pki, source, {
      onDelivered: (_seqs, readings) => (delivered += readings),
      onMessage: () => messages++,
    });
    await uplink.start();
    await waitFor(() => source.records.size === 0, 15_000, 'all records acked');
    source.append(20); // live records wake the uplink through onAppend
    await waitFor(() => source.records.size === 0 && got.length >= 320, 15_000, 'live records');
    assert.deepEqual(
      [...new Set(got.map((g) => g.seq))].sort((a, b) => a - b),
      range(320),
    );
    for (const g of got)
      assert.deepEqual(
        g.values,
        [0, 1, 2, 3, 4].map((k) => g.seq * 1000 + k),
      );
    assert.equal(delivered, 320 * 5);
    assert.deepEqual(
      [...source.acked].sort((a, b) => a - b),
      range(320),
    );
    assert.ok(messages > 1 && messages < 320, `records were batched into ${messages} messages`);
    assert.ok(Math.max(...seen.bytes) <= 4096, 'maxPayloadBytes respected');
    const st = uplink.state();
    assert.equal(st.state, 'connected');
    assert.equal(st.inflight, 0);
    assert.match(st.broker, /^localhost:\d+$/);
    // What status and the metrics show: every PUBLISH the broker saw, its bytes with topic and header.
    assert.equal(st.throughput!.publishesTotal, broker.published.messages);
    const payloadBytes = seen.bytes.reduce((a, b) => a + b, 0);
    assert.ok(st.throughput!.bytesTotal > payloadBytes, `${st.throughput!.bytesTotal} vs ${payloadBytes}`);
    assert.ok(st.throughput!.bytesTotal < payloadBytes + messages * (TOPIC.length + 16));
    assert.equal(st.throughput!.reconnects, 0);
    assert.deepEqual(st.limits, { publishesPerSecond: 10_000, bytesPerSecond: 100 * 1024 * 1024 });
    assert.equal(st.certificate?.state, 'valid');
    await unsubscribe();
  });

  it('never has more than limits.inflight unacknowledged publishes (seen at the broker)', async () => {
    const source = new MemorySource();
    source.append(200, 20);
    broker.pauseAcks();
    uplink = makeUplink(broker, pki, source, {
      limits: { publishesPerSecond: 10_000, bytesPerSecond: 1e8, maxPayloadBytes: 600, inflight: 4 },
    });
    await uplink.start();
    await waitFor(
      () => broker.published.messages >= 4 && uplink!.state().inflight === 4,
      10_000,
      'a full window',
    );
    // With every PUBACK held, each publish past the window would show at the broker at once.
    assert.equal(broker.published.maxOutstanding, 4, 'the window is full: nothing more is sent');
    broker.resumeAcks();
    await waitFor(() => source.records.size === 0, 15_000, 'drain');
    assert.ok(broker.published.maxOutstanding <= 4, `max outstanding ${broker.published.maxOutstanding}`);
    assert.ok(broker.published.messages > 50);
  });

  it('paces publishes per second and bytes per second under the limits', async () => {
    const source = new MemorySource();
    source.append(60, 1);
    uplink = makeUplink(broker, pki, source, {
      // One record per message (≈100 bytes) so the publish bucket decides.
      limits: { publishesPerSecond: 20, bytesPerSecond: 1e8, maxPayloadBytes: 120, inflight: 16 },
    });
    const t0 = Date.now();
    await uplink.start();
    await waitFor(() => source.records.size === 0, 15_000, 'drain at 20/s');
    const elapsed = Date.now() - t0;
    assert.ok(elapsed >= 2500, `60 publishes at 20/s took only ${elapsed} ms`);
    const perWindow = (i: number) => seen.at.filter((t) => t >= seen.at[i]! && t < seen.at[i]! + 1000).length;
    const worst = Math.max(...seen.at.map((_, i) => perWindow(i)));
    assert.ok(worst <= 22, `${worst} publishes in one second`);
    // The rate status shows: paced at the limit, averaged over the last seconds.
    const rate = uplink.state().throughput!.publishesPerSecond;
    assert.ok(rate > 5 && rate <= 20.5, `publishes/s ${rate}`);
    await uplink.stop();

    seen.at.length = seen.bytes.length = 0;
    source.append(40, 20); // ≈ 500-byte messages, 5000 B/s → about 10 messages a second
    uplink = makeUplink(broker, pki, source, {
      limits: { publishesPerSecond: 1000, bytesPerSecond: 5000, maxPayloadBytes: 1200, inflight: 16 },
    });
    await uplink.start();
    await waitFor(() => source.records.size === 0, 20_000, 'drain at 5000 B/s');
    const bytesIn = (i: number) =>
      seen.at.reduce((s, t, j) => (t >= seen.at[i]! && t < seen.at[i]! + 1000 ? s + seen.bytes[j]! : s), 0);
    const worstBytes = Math.max(...seen.at.map((_, i) => bytesIn(i)));
    const total = seen.bytes.reduce((a, b) => a + b, 0);
    assert.ok(worstBytes <= 5000 + 1200, `${worstBytes} bytes in one second`);
    assert.ok(total > 10_000, 'the byte test ran long enough to mean something');
  });

  it('survives connection drops mid-stream: everything delivered at least once, nothing skipped', async () => {
    const source = new MemorySource();
    source.append(400, 10);
    uplink = makeUplink(broker, pki, source, {
      limits: { publishesPerSecond: 300, bytesPerSecond: 1e8, maxPayloadBytes: 1000, inflight: 8 },
    });
    await uplink.start();
    for (const at of [60, 200]) {
      await waitFor(() => source.acked.length >= at, 15_000, `${at} acked`);
      broker.dropConnections();
    }
    await waitFor(() => source.records.size === 0, 20_000, 'drain after drops');
    assert.deepEqual(
      [...new Set(seen.seqs)].sort((a, b) => a - b),
      range(400),
    );
    assert.deepEqual(
      [...new Set(source.acked)].sort((a, b) => a - b),
      range(400),
    );
    assert.ok(broker.published.connections >= 3, 'the uplink reconnected after each drop');
    assert.equal(uplink.state().state, 'connected');
    assert.equal(uplink.state().throughput!.reconnects, broker.published.connections - 1);
  });

  it('survives a broker restart on the same port (unacked records resent)', async () => {
    const source = new MemorySource();
    source.append(300, 10);
    uplink = makeUplink(broker, pki, source, {
      limits: { publishesPerSecond: 200, bytesPerSecond: 1e8, maxPayloadBytes: 1000, inflight: 8 },
    });
    await uplink.start();
    await waitFor(() => source.acked.length >= 50, 15_000, '50 acked');
    broker.pauseAcks(); // the restart loses whatever is in flight
    await waitFor(() => uplink!.state().inflight > 0, 5000, 'messages in flight');
    const port = broker.port;
    await broker.close();
    await waitFor(() => uplink!.state().state !== 'connected', 5000, 'uplink notices');
    // The broker stays down until the uplink has failed to reconnect at least once.
    await waitFor(() => /ECONNREFUSED/.test(uplink!.state().lastError ?? ''), 5000, 'a refused reconnect');
    broker = await startTlsBroker({ pki, port });
    recordPublishes(broker, seen);
    await waitFor(() => source.records.size === 0, 20_000, 'drain after restart');
    assert.deepEqual(
      [...new Set(seen.seqs)].sort((a, b) => a - b),
      range(300),
    );
    assert.equal(uplink.state().state, 'connected');
  });

  it('stop() waits for in-flight PUBACKs, then leaves unacked records in the source', async () => {
    const source = new MemorySource();
    source.append(200, 10);
    broker.pauseAcks();
    uplink = makeUplink(broker, pki, source, {
      limits: { publishesPerSecond: 10_000, bytesPerSecond: 1e8, maxPayloadBytes: 800, inflight: 4 },
    });
    await uplink.start();
    // The client counts a publish as in flight before the broker has it: wait for both sides (the
    // flake was reading the broker's seqs while only the client reported 4).
    await waitFor(
      () => uplink!.state().inflight === 4 && seen.at.length === 4,
      10_000,
      'window full, at the client and at the broker',
    );
    const inflightSeqs = [...new Set(seen.seqs)];
    const stopping = uplink.stop(performance.now() + 5000); // stops pulling at once: the PUBACKs find it waiting
    broker.resumeAcks();
    await stopping;
    assert.deepEqual(
      [...source.acked].sort((a, b) => a - b),
      inflightSeqs.sort((a, b) => a - b),
    );
    assert.equal(source.records.size, 200 - inflightSeqs.length, 'the rest stays queued');
    assert.equal(uplink.state().state, 'offline');
    const sentAfterStop = broker.published.messages;
    // Once the broker has seen the connection go, nothing more can arrive from it.
    await waitFor(() => broker.outstanding().length === 0, 5000, 'the connection closed at the broker');
    assert.equal(broker.published.messages, sentAfterStop, 'nothing is pulled after stop');
    assert.equal(inflightSeqs.length, new Set(seen.seqs).size, 'nothing was published after stop()');
  });

  it('stop() gives up at its deadline when PUBACKs never come; those records stay queued', async () => {
    const source = new MemorySource();
    source.append(50, 10);
    broker.dropAcks();
    uplink = makeUplink(broker, pki, source, {
      limits: { publishesPerSecond: 10_000, bytesPerSecond: 1e8, maxPayloadBytes: 800, inflight: 4 },
    });
    await uplink.start();
    await waitFor(() => uplink!.state().inflight === 4, 10_000, 'window full');
    const t = Date.now();
    await uplink.stop(performance.now() + 300);
    assert.ok(Date.now() - t < 3000, 'bounded stop');
    assert.equal(source.acked.length, 0);
    assert.equal(source.records.size, 50);
  });

  it('sets TCP_NODELAY on the socket at every connect', async () => {
    const proto = net.Socket.prototype;
    // Observes the real method (kept intact): there is no getter for TCP_NODELAY on a socket.
    // eslint-disable-next-line @typescript-eslint/unbound-method
    const original = proto.setNoDelay;
    const sockets = new Set<net.Socket>();
    proto.setNoDelay = function (this: net.Socket, noDelay?: boolean) {
      if (noDelay === true) sockets.add(this);
      return original.call(this, noDelay);
    };
    try {
      const source = new MemorySource();
      uplink = makeUplink(broker, pki, source);
      await uplink.start();
      await waitFor(() => uplink!.state().state === 'connected', 10_000, 'connected');
      const toBroker = () => [...sockets].filter((s) => s.remotePort === broker.port).length;
      assert.equal(toBroker(), 1);
      broker.dropConnections();
      await waitFor(() => toBroker() >= 2 && uplink!.state().state === 'connected', 10_000, 'reconnected');
    } finally {
      proto.setNoDelay = original;
    }
  });
});
