// The uplink's session and pump under the fake clock, behind the client seam (fake-mqtt.ts): backoff
// scheduling, stop while connecting, the pace timer, MQTT 5 (Receive Maximum, Maximum Packet Size,
// PUBACK 0x97, server DISCONNECT) and the adaptive pace. The real client and broker are covered by
// test/integration/uplink*.test.ts.

import assert from 'node:assert/strict';
import { pino } from 'pino';
import { PULL_RECORDS } from '../../../src/uplink/feed.js';
import { PACKED_AHEAD } from '../../../src/uplink/pump.js';
import { Uplink, type UplinkOptions } from '../../../src/uplink/uplink.js';
import { FakeClock } from './fake-clock.js';
import { fakeConnect, type FakeMqtt } from './fake-mqtt.js';
import { MemorySource } from './memory-source.js';

const flush = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
};

function setup(over: Partial<UplinkOptions> = {}) {
  const clock = new FakeClock();
  const source = new MemorySource();
  const fake = fakeConnect();
  const delivered: number[] = [];
  const uplink = new Uplink(
    {
      gatewayId: 'gw1',
      url: 'mqtts://broker.example:8883',
      topic: 'dt/{gateway}',
      keepaliveMs: 60_000,
      limits: {
        publishesPerSecond: 100,
        bytesPerSecond: 512 * 1024,
        maxPayloadBytes: 128 * 1024,
        inflight: 10,
      },
      backoff: { minMs: 1000, maxMs: 8000, random: () => 1 },
      tls: { ca: '', cert: '', key: '' },
      source,
      log: pino({ level: 'silent' }),
      clock,
      onDelivered: (seqs) => delivered.push(...seqs),
      ...over,
    },
    fake.connect,
  );
  const client = (i = fake.clients.length - 1): FakeMqtt => fake.clients[i]!;
  return { clock, source, fake, uplink, client, delivered };
}

/** Seqs of a payload (plain JSON). */
const seqsOf = (payload: Buffer): number[] =>
  (JSON.parse(payload.toString('utf8')) as { recs: { seq: number }[] }).recs.map((r) => r.seq);

describe('Uplink behind the client seam (fake clock)', () => {
  it('schedules reconnects by the backoff, widening after each failure, and connects again on time', async () => {
    const { clock, fake, uplink, client } = setup();
    await uplink.start();
    assert.equal(fake.clients.length, 1);
    assert.equal(uplink.state().state, 'connecting');
    client().fail(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    assert.equal(uplink.state().state, 'backoff');
    clock.advance(999);
    assert.equal(fake.clients.length, 1, 'not before the first delay (1 s)');
    clock.advance(1);
    assert.equal(fake.clients.length, 2, 'the second attempt after 1 s');
    client().fail(new Error('connect ECONNREFUSED'));
    clock.advance(1999);
    assert.equal(fake.clients.length, 2, 'the window widened to 2 s');
    clock.advance(1);
    assert.equal(fake.clients.length, 3);
    assert.match(uplink.state().lastError ?? '', /^EDGEGW_E_UPLINK/);
    await uplink.stop();
  });

  it('a stop while connecting ends the attempt and schedules nothing', async () => {
    const { clock, fake, uplink, client } = setup();
    await uplink.start();
    await uplink.stop();
    assert.equal(client().ended, true, 'the pending attempt was ended');
    assert.equal(uplink.state().state, 'offline');
    clock.advance(60_000);
    await flush();
    assert.equal(fake.clients.length, 1, 'no reconnect after stop');
    assert.equal(clock.pending, 0, 'no timer left behind');
  });

  it('replaces a later pace wake by an earlier one and publishes when the pacer allows', async () => {
    // 2 publishes/s: the window and the bucket hold the third publish back.
    const { clock, source, uplink, client } = setup({
      limits: { publishesPerSecond: 2, bytesPerSecond: 512 * 1024, maxPayloadBytes: 4096, inflight: 100 },
    });
    await uplink.start();
    client().connack();
    for (let i = 0; i < 4; i++) {
      source.append(1);
      await flush();
    }
    const first = client().published.length;
    assert.ok(first >= 1 && first < 4, `the pacer held some back (${first} sent)`);
    await clock.advanceAsync(3000);
    await flush();
    const seqs = client().published.flatMap((p) => seqsOf(p.payload));
    assert.deepEqual(
      [...seqs].sort((a, b) => a - b),
      [1, 2, 3, 4],
      'the pace timer published the rest, each once',
    );
    await uplink.stop(0);
  });

  it('while the pacer holds a backlog message, the next PACKED_AHEAD are packed, and go as the pace allows', async () => {
    // 2 publishes/s: the pacer holds the backlog after the first publish.
    const { clock, source, uplink, client } = setup({
      limits: { publishesPerSecond: 2, bytesPerSecond: 512 * 1024, maxPayloadBytes: 1024, inflight: 100 },
    });
    source.append(400);
    await uplink.start();
    client().connack();
    await flush();
    const sent = client().published.flatMap((p) => seqsOf(p.payload));
    assert.ok(sent.length > 0 && sent.length < 400, `the pacer held the backlog (${sent.length} sent)`);
    const perMessage = sent.length / client().published.length;
    const packed = source.served - sent.length;
    assert.ok(
      // At least five whole messages (there were two before, and a pause of the sender was caught up
      // only as fast as packing went).
      packed >= 5 * perMessage && PACKED_AHEAD >= 6,
      `${packed} records pulled beyond those sent: ${PACKED_AHEAD} messages of ~${Math.round(perMessage)} packed`,
    );
    assert.ok(packed <= (PACKED_AHEAD + 1) * perMessage + PULL_RECORDS, `no more than that (${packed})`);
    await clock.advanceAsync(5000);
    await flush();
    const later = client().published.flatMap((p) => seqsOf(p.payload));
    assert.ok(later.length > sent.length, 'the packed messages went as the pace allowed');
    assert.deepEqual(
      later,
      Array.from({ length: later.length }, (_, i) => i + 1),
      'in seq order, each once',
    );
    await uplink.stop(0);
  });

  it('MQTT 5: never exceeds the broker Receive Maximum, whatever uplink.limits.inflight says', async () => {
    const { clock, source, uplink, client } = setup({
      protocol: '5',
      limits: {
        publishesPerSecond: 1000,
        bytesPerSecond: 10 * 1024 * 1024,
        maxPayloadBytes: 200,
        inflight: 50,
      },
    });
    source.append(40, 5);
    await uplink.start();
    const c = client();
    assert.equal(c.options.protocolVersion, 5);
    assert.deepEqual(c.options.properties, { sessionExpiryInterval: 0 });
    c.connack({ receiveMaximum: 3 });
    await flush();
    await clock.advanceAsync(2000); // the pacer is not what holds them back
    assert.equal(c.published.length, 3, 'stopped at the Receive Maximum');
    assert.equal(uplink.state().inflight, 3);
    c.ack(0);
    await clock.advanceAsync(2000);
    assert.equal(c.published.length, 4, 'one PUBACK, one more publish');
    assert.equal(c.published[0]!.opts.properties?.contentType, 'application/json');
    assert.equal(c.published[0]!.opts.properties?.payloadFormatIndicator, true);
    await uplink.stop(0);
  });

  it('MQTT 5: a Maximum Packet Size smaller than the paced message size makes smaller messages', async () => {
    const { clock, source, uplink, client } = setup({ protocol: '5' });
    source.append(200, 20);
    await uplink.start();
    client().connack({ maximumPacketSize: 2048, receiveMaximum: 100 });
    await clock.advanceAsync(2000);
    const sizes = client().published.map((p) => p.payload.length + Buffer.byteLength(p.topic) + 64);
    assert.ok(sizes.length > 1);
    for (const s of sizes) assert.ok(s <= 2048, `packet ${s} B within the broker's 2048 B`);
    await uplink.stop(0);
  });

  it('MQTT 5: PUBACK 0x97 keeps the record, resends it first, halves the pace, then recovers step by step', async () => {
    const { clock, source, uplink, client, delivered } = setup({ protocol: '5' });
    await uplink.start();
    client().connack({ receiveMaximum: 100 });
    source.append(1);
    await flush();
    const c = client();
    assert.equal(c.published.length, 1);
    c.ack(0, 0x97);
    await flush();
    assert.equal(uplink.state().pace?.factor, 0.5, 'the pace halved');
    assert.match(uplink.state().pace?.reason ?? '', /0x97/);
    assert.match(uplink.state().lastError ?? '', /^EDGEGW_E_UPLINK_THROTTLED: .*PUBACK 0x97/);
    assert.equal(uplink.state().pace?.refused, 1);
    assert.deepEqual(delivered, [], 'not delivered: the broker discarded it');
    assert.equal(source.acked.length, 0, 'still queued');
    assert.equal(c.published.length, 2, 'sent again');
    assert.deepEqual(seqsOf(c.published[1]!.payload), [1], 'the same record');
    c.ack(1);
    await flush();
    assert.deepEqual(delivered, [1]);
    assert.equal(uplink.state().state, 'connected', 'no reconnect for a quota refusal');
    // Recovery: +10% of the limits per second without a sign.
    await clock.advanceAsync(1000);
    assert.equal(uplink.state().pace?.factor, 0.6);
    await clock.advanceAsync(4000);
    assert.equal(uplink.state().pace?.factor, 1);
    assert.equal(uplink.state().pace?.reason, null);
    await uplink.stop(0);
  });

  it('slows down when PUBACK latency climbs well above its floor', async () => {
    const { clock, source, uplink, client } = setup();
    await uplink.start();
    client().connack();
    const c = client();
    // A floor of fast PUBACKs, then slow ones.
    for (let i = 0; i < 5; i++) {
      source.append(1);
      await flush();
      await clock.advanceAsync(5);
      c.ack(c.published.length - 1);
      await flush();
    }
    assert.equal(uplink.state().pace?.factor, 1, 'fast PUBACKs: at the limits');
    for (let i = 0; i < 8 && uplink.state().pace?.factor === 1; i++) {
      source.append(1);
      await flush();
      await clock.advanceAsync(3000);
      c.ack(c.published.length - 1);
      await flush();
    }
    assert.ok((uplink.state().pace?.factor ?? 1) < 1, 'the pace dropped');
    assert.match(uplink.state().pace?.reason ?? '', /latency/);
    await uplink.stop(0);
  });

  it('MQTT 5: a server DISCONNECT shows its reason code in lastError, and the uplink reconnects', async () => {
    const { clock, fake, uplink, client } = setup({ protocol: '5' });
    await uplink.start();
    client().connack();
    client().emit('disconnect', { cmd: 'disconnect', reasonCode: 0x98 });
    client().emit('close');
    assert.match(uplink.state().lastError ?? '', /^EDGEGW_E_UPLINK_DISCONNECTED: .*DISCONNECT 0x98/);
    clock.advance(1000);
    assert.equal(fake.clients.length, 2);
    await uplink.stop(0);
  });

  it('a broker close with publishes in flight halves the pace; they are resent on the next connection', async () => {
    const { clock, source, uplink, client } = setup();
    await uplink.start();
    client().connack();
    source.append(3);
    await flush();
    assert.ok(client().published.length >= 1);
    client().emit('close');
    assert.equal(uplink.state().pace?.factor, 0.5);
    clock.advance(1000);
    client().connack();
    await flush();
    const resent = client().published.flatMap((p) => seqsOf(p.payload));
    assert.deepEqual(resent, [1, 2, 3], 'everything unacknowledged sent again, in order');
    await uplink.stop(0);
  });
});
