// The test broker's IoT Core rules and MQTT 5 translation, with raw mqtt.js clients (3.1.1 and 5)
// over real TLS to real aedes. The rules' windows run on a FakeClock where a test needs exact
// seconds, so "99 in a second passes, 101 does not" holds on a loaded machine too.

import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import { createDemoPki, type DemoPki } from '../../src/demo/pki.js';
import { startTlsBroker, REASON, type BrokerOptions, type TlsBroker } from '../../src/demo/broker.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { makeSite, waitFor } from '../helpers/site.js';

const pki = createDemoPki('rules-gw');
/** The clients a test opened (ended after each test). */
let clients: mqtt.MqttClient[] = [];

function open(broker: TlsBroker, clientId: string, v: 4 | 5, keys: DemoPki = pki): mqtt.MqttClient {
  return mqtt.connect(broker.url, {
    ca: keys.caCert,
    cert: keys.clientCert,
    key: keys.clientKey,
    clientId,
    reconnectPeriod: 0,
    protocolVersion: v,
  });
}

/** Connects and resolves with the CONNACK, or rejects with the client's error. */
function connect(
  broker: TlsBroker,
  clientId: string,
  v: 4 | 5,
  keys: DemoPki = pki,
): Promise<{ c: mqtt.MqttClient; connack: mqtt.IConnackPacket }> {
  const c = open(broker, clientId, v, keys);
  clients.push(c);
  return new Promise((resolve, reject) => {
    c.once('connect', (connack) => resolve({ c, connack }));
    c.once('error', reject);
    c.once('close', () => reject(new Error('closed before CONNACK')));
  });
}

/** Publishes `n` QoS 1 messages at once; resolves each one's error (null when acknowledged). */
function burst(
  c: mqtt.MqttClient,
  n: number,
  topic = 't/rules',
  payload = 'x',
): { errs: (Error | null | undefined)[] } {
  const errs: (Error | null | undefined)[] = new Array<Error | null | undefined>(n).fill(undefined);
  for (let i = 0; i < n; i++) c.publish(topic, payload, { qos: 1 }, (err) => (errs[i] = err ?? null));
  return { errs };
}

const acked = (errs: (Error | null | undefined)[]): number => errs.filter((e) => e === null).length;

describe('test broker (IoT Core rules, MQTT 5, cut)', () => {
  let broker: TlsBroker;

  async function start(o: Partial<BrokerOptions>): Promise<TlsBroker> {
    broker = await startTlsBroker({ pki, ...o });
    return broker;
  }

  afterEach(async () => {
    for (const c of clients) await c.endAsync(true);
    clients = [];
    await broker.close();
  });

  describe('test broker: IoT Core rules', function () {
    this.timeout(30_000);

    it('forwards 99 publishes in a second and again in the next: nothing discarded', async () => {
      const clock = new FakeClock();
      await start({ iotcore: true, clock });
      const { c } = await connect(broker, 'gw-99', 4);
      for (let s = 0; s < 3; s++) {
        const { errs } = burst(c, 99);
        await waitFor(() => acked(errs) === 99, 10_000, `second ${s}: 99 PUBACKs`);
        clock.advance(1000);
      }
      assert.equal(broker.rules.discarded, 0);
      assert.equal(broker.published.acksSent, 297);
    });

    it('discards publishes over the rate: no PUBACK under 3.1.1, counted', async () => {
      const clock = new FakeClock();
      await start({ iotcore: { publishesPerSecond: 100 }, clock });
      const { c } = await connect(broker, 'gw-101', 4);
      const first = burst(c, 103);
      await waitFor(
        () => broker.rules.discarded === 3 && acked(first.errs) === 100,
        10_000,
        '100 acked, 3 discarded',
      );
      clock.advance(1000);
      // PUBACKs come in order: once a later publish is acknowledged, the discarded three never will be.
      const later = burst(c, 1);
      await waitFor(() => acked(later.errs) === 1, 10_000, 'the next second’s publish acknowledged');
      assert.equal(acked(first.errs), 100);
      assert.deepEqual(first.errs.slice(100), [undefined, undefined, undefined]);
      assert.equal(broker.rules.discarded, 3);
    });

    it('discards on the system clock too (a burst over the rate)', async () => {
      await start({ iotcore: { publishesPerSecond: 20 } });
      const { c } = await connect(broker, 'gw-burst', 4);
      const { errs } = burst(c, 30);
      await waitFor(
        () => acked(errs) === 20 && broker.rules.discarded === 10,
        10_000,
        '20 acked, 10 discarded',
      );
    });

    it('answers an MQTT 5 client over the rate with PUBACK 0x97 (quota exceeded)', async () => {
      const clock = new FakeClock();
      await start({ iotcore: { publishesPerSecond: 5 }, clock });
      const { c } = await connect(broker, 'gw-v5', 5);
      const { errs } = burst(c, 7);
      await waitFor(() => errs.every((e) => e !== undefined), 10_000, 'seven answers');
      assert.equal(acked(errs), 5);
      for (const e of errs.slice(5))
        assert.equal((e as Error & { code?: number }).code, REASON.quotaExceeded);
      assert.equal(broker.rules.discarded, 2);
    });

    it('stops reading past `inflight` unacknowledged publishes, and reads on as PUBACKs go', async () => {
      await start({ iotcore: { inflight: 5 } });
      const { c } = await connect(broker, 'gw-inflight', 4);
      broker.pauseAcks();
      const { errs } = burst(c, 8);
      await waitFor(
        () => broker.published.messages === 5 && broker.rules.delayedInflight > 0,
        10_000,
        'five read',
      );
      assert.deepEqual(broker.outstanding(), [5]);
      assert.equal(broker.published.maxOutstanding, 5);
      broker.resumeAcks();
      await waitFor(() => acked(errs) === 8, 10_000, 'all eight acknowledged');
      assert.equal(broker.published.maxOutstanding, 5);
    });

    it('delays a client over the byte rate until the window allows', async () => {
      const clock = new FakeClock();
      await start({ iotcore: { bytesPerSecond: 1000 }, clock });
      const { c } = await connect(broker, 'gw-bytes', 4);
      const { errs } = burst(c, 3, 't/bytes', 'b'.repeat(600));
      await waitFor(
        () => acked(errs) === 1 && broker.rules.delayedBytes === 1,
        10_000,
        'one read, one delayed',
      );
      assert.equal(broker.published.messages, 1);
      clock.advance(999);
      assert.equal(broker.published.messages, 1);
      clock.advance(1);
      await waitFor(
        () => acked(errs) === 2 && broker.rules.delayedBytes === 2,
        10_000,
        'the second read a second later',
      );
      clock.advance(1000);
      await waitFor(() => acked(errs) === 3, 10_000, 'the third');
      assert.equal(broker.rules.discarded, 0);
    });

    it('reports each PUBLISH frame as it is read, before the byte window delays it (onPublishRead)', async () => {
      const clock = new FakeClock();
      const reads: number[] = [];
      await start({ iotcore: { bytesPerSecond: 1000 }, clock, onPublishRead: (n) => reads.push(n) });
      const { c } = await connect(broker, 'gw-reads', 4);
      const { errs } = burst(c, 3, 't/reads', 'r'.repeat(600));
      await waitFor(
        () => reads.length >= 2 && broker.rules.delayedBytes === 1,
        10_000,
        'two read, one delayed',
      );
      // The second frame was reported when it arrived, not when the window let it through.
      assert.equal(broker.published.messages, 1);
      clock.advance(1000);
      await waitFor(
        () => acked(errs) === 2 && broker.rules.delayedBytes === 2,
        10_000,
        'the second, the third delayed',
      );
      clock.advance(1000);
      await waitFor(() => acked(errs) === 3, 10_000, 'the third');
      assert.equal(reads.length, 3);
      // Whole frames: fixed header, remaining length, topic, packet id, payload.
      assert.deepEqual(reads, [614, 614, 614]);
      assert.equal(
        reads.reduce((a, b) => a + b, 0),
        broker.published.bytes,
      );
    });

    for (const v of [4, 5] as const) {
      it(`closes an MQTT ${v === 4 ? '3.1.1' : '5'} connection that publishes an oversize payload or topic`, async () => {
        await start({ iotcore: { maxPayloadBytes: 1000 } });
        const cases = [
          {
            topic: 't/ok',
            payload: 'p'.repeat(1001),
            reason: REASON.packetTooLarge,
            counter: 'refusedPayload',
          },
          {
            topic: `t/${'a'.repeat(260)}`,
            payload: 'p',
            reason: REASON.topicNameInvalid,
            counter: 'refusedTopic',
          },
          {
            topic: 'a/b/c/d/e/f/g/h/i',
            payload: 'p',
            reason: REASON.topicNameInvalid,
            counter: 'refusedTopic',
          },
        ] as const;
        for (const [i, k] of cases.entries()) {
          const { c } = await connect(broker, `gw-size-${v}-${i}`, v);
          let reason: number | undefined;
          c.on('disconnect', (p) => (reason = p.reasonCode));
          let closed = false;
          c.on('close', () => (closed = true));
          c.publish(k.topic, k.payload, { qos: 1 });
          await waitFor(() => closed, 10_000, `case ${i}: the connection closed`);
          assert.equal(reason, v === 5 ? k.reason : undefined, `case ${i}`);
          assert.equal(broker.published.messages, 0, 'nothing reached aedes');
        }
        assert.equal(broker.rules.refusedPayload, 1);
        assert.equal(broker.rules.refusedTopic, 2);
      });
    }

    it('accepts 7 slashes and 256-byte topics', async () => {
      await start({ iotcore: true });
      const { c } = await connect(broker, 'gw-topic', 4);
      await c.publishAsync('a/b/c/d/e/f/g/h', 'p', { qos: 1 });
      await c.publishAsync(`t/${'a'.repeat(254)}`, 'p', { qos: 1 });
      assert.equal(broker.rules.refusedTopic, 0);
    });

    for (const v of [4, 5] as const) {
      it(`refuses a second CONNECT within a second for the same client id (MQTT ${v === 4 ? '3.1.1: rc 3' : '5: 0x9F'})`, async () => {
        const clock = new FakeClock();
        await start({ iotcore: true, clock });
        const { c } = await connect(broker, 'gw-again', v);
        await c.endAsync();
        const refused = await connect(broker, 'gw-again', v).then(
          () => null,
          (e: Error & { code?: number }) => e,
        );
        assert.equal(refused?.code, v === 4 ? 3 : REASON.connectionRateExceeded, String(refused));
        assert.equal(broker.rules.refusedConnects, 1);
        await connect(broker, 'gw-other', v); // another client id is not held back
        clock.advance(1000);
        await connect(broker, 'gw-again', v);
        assert.equal(broker.rules.refusedConnects, 1);
      });
    }
    it('lets no client in without a certificate or below TLS 1.2', async () => {
      await start({ iotcore: true });
      const attempt = (o: mqtt.IClientOptions): Promise<string> =>
        new Promise((resolve) => {
          const c = mqtt.connect(broker.url, { ca: pki.caCert, reconnectPeriod: 0, ...o });
          clients.push(c);
          c.once('connect', () => resolve('connected'));
          c.once('error', (e) => resolve(e.message));
          c.once('close', () => resolve('closed'));
        });
      assert.notEqual(await attempt({ clientId: 'gw-nocert' }), 'connected');
      const old = {
        cert: pki.clientCert,
        key: pki.clientKey,
        maxVersion: 'TLSv1.1' as const,
        clientId: 'gw-tls11',
      };
      assert.notEqual(await attempt(old), 'connected');
      assert.equal(broker.published.connections, 0, 'no TLS session was established');
    });
  });

  describe('test broker: MQTT 5 clients', function () {
    this.timeout(30_000);

    it('advertises Receive Maximum and Maximum Packet Size in CONNACK (rules on or off)', async () => {
      for (const iotcore of [undefined, true] as const) {
        await start({
          mqtt5: { receiveMaximum: 7, maximumPacketSize: 4096 },
          ...(iotcore ? { iotcore } : {}),
        });
        const { c, connack } = await connect(broker, 'gw-props', 5);
        assert.equal(connack.reasonCode, 0);
        assert.equal(connack.properties?.receiveMaximum, 7);
        assert.equal(connack.properties?.maximumPacketSize, 4096);
        await c.endAsync(true);
        clients = [];
        await broker.close();
      }
      await start({});
      const { connack } = await connect(broker, 'gw-defaults', 5);
      assert.equal(connack.properties?.receiveMaximum, 100);
      assert.equal(connack.properties?.maximumPacketSize, 128 * 1024 + 512);
    });

    it('delivers a v5 publish (with properties) to a 3.1.1 subscriber, and a 3.1.1 publish to a v5 subscriber', async () => {
      await start({ iotcore: true });
      const got: string[] = [];
      await broker.subscribe('t/mixed', (p) => got.push(p.toString()));
      const { c: v5 } = await connect(broker, 'gw-v5-pub', 5);
      await v5.publishAsync('t/mixed', 'from-v5', {
        qos: 1,
        properties: { contentType: 'application/json', payloadFormatIndicator: true },
      });
      await waitFor(() => got.includes('from-v5'), 10_000, 'the v4 subscriber got it');
      const v5got: string[] = [];
      v5.on('message', (_t, p) => v5got.push(p.toString()));
      const granted = await v5.subscribeAsync('t/back', { qos: 1 });
      assert.equal(granted[0]?.qos, 1);
      const { c: v4 } = await connect(broker, 'gw-v4-pub', 4);
      await v4.publishAsync('t/back', 'from-v4', { qos: 1 });
      await waitFor(() => v5got.includes('from-v4'), 10_000, 'the v5 subscriber got it');
      await v5.unsubscribeAsync('t/back');
      assert.deepEqual(
        broker
          .clients()
          .map((k) => k.protocol)
          .sort(),
        [4, 4, 5],
      );
    });

    it('sends a server DISCONNECT with a chosen reason code (disconnectClients)', async () => {
      await start({});
      const got: string[] = [];
      await broker.subscribe('t/x', (p) => got.push(p.toString()));
      const { c } = await connect(broker, 'gw-kicked', 5);
      let reason: number | undefined;
      c.on('disconnect', (p) => (reason = p.reasonCode));
      let closed = false;
      c.on('close', () => (closed = true));
      assert.equal(broker.disconnectClients(REASON.quotaExceeded), 1, 'the subscriber is not counted');
      await waitFor(() => closed, 10_000, 'the client closed');
      assert.equal(reason, REASON.quotaExceeded);
    });
  });

  describe('test broker: cut() and restore()', function () {
    this.timeout(30_000);

    it('drops client connections and refuses new ones until restored; its own subscriber stays', async () => {
      await start({ iotcore: true });
      const got: string[] = [];
      await broker.subscribe('t/cut', (p) => got.push(p.toString()));
      const { c } = await connect(broker, 'gw-cut', 4);
      let closed = false;
      c.on('close', () => (closed = true));
      broker.cut();
      assert.equal(broker.isCut, true);
      await waitFor(() => closed, 10_000, 'the client dropped');
      await assert.rejects(connect(broker, 'gw-cut-2', 4));
      assert.equal(broker.published.refusedWhileCut, 1);
      broker.restore();
      const { c: again } = await connect(broker, 'gw-cut-3', 4);
      await again.publishAsync('t/cut', 'after', { qos: 1 });
      await waitFor(() => got.includes('after'), 10_000, 'the subscriber, still connected, got it');
    });
  });

  describe('test sites (makeSite)', function () {
    this.timeout(30_000);

    it('run their broker under IoT Core rules unless told otherwise', async () => {
      for (const iotcore of [undefined, false] as const) {
        const site = await makeSite(iotcore === undefined ? {} : { iotcore });
        broker = site.broker;
        try {
          const { c } = await connect(broker, 'gw-site', 4, site.pki);
          const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
          c.publish('a/b/c/d/e/f/g/h/i', 'p', { qos: 1 });
          if (iotcore === undefined) await closed;
          else await c.publishAsync('a/b/c/d/e/f/g/h/i', 'p', { qos: 1 });
          assert.equal(broker.rules.refusedTopic, iotcore === undefined ? 1 : 0);
        } finally {
          for (const c of clients) await c.endAsync(true);
          clients = [];
          await site.cleanup();
        }
      }
      broker = await startTlsBroker({ pki }); // for afterEach
    });
  });
});
