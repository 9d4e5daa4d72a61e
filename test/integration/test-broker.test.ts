// The test broker's fault gate: it drops one PUBACK in n and reports each publish as its PUBACK
// reaches the client. The reliability tests and the chaos suite build on both.

import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import { createDemoPki } from '../../src/demo/pki.js';
import { startTlsBroker, type TlsBroker } from '../../src/demo/broker.js';
import { waitFor } from '../helpers/site.js';

describe('test broker fault gate', () => {
  const pki = createDemoPki('gate-gw');
  let broker: TlsBroker;
  let client: mqtt.MqttClient;
  const acked: string[] = [];

  beforeEach(async () => {
    acked.length = 0;
    broker = await startTlsBroker({ pki, onAcked: (_t, payload) => acked.push(payload.toString()) });
    client = mqtt.connect(broker.url, {
      ca: pki.caCert,
      cert: pki.clientCert,
      key: pki.clientKey,
      clientId: 'gate-gw',
      reconnectPeriod: 0,
      protocolVersion: 4,
    });
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
  });

  afterEach(async () => {
    await client.endAsync(true);
    await broker.close();
  });

  it('drops every n-th PUBACK and reports only the acknowledged publishes, in order', async () => {
    broker.dropEveryNthAck(4);
    const done: string[] = [];
    for (let i = 1; i <= 10; i++) {
      const body = `m${i}`;
      client.publish('t/gate', body, { qos: 1 }, (err) => {
        if (!err) done.push(body);
      });
    }
    await waitFor(() => broker.published.messages === 10 && done.length === 8, 5000, 'eight PUBACKs');
    assert.deepEqual(done, ['m1', 'm2', 'm3', 'm5', 'm6', 'm7', 'm9', 'm10']);
    assert.deepEqual(acked, done);
    assert.deepEqual(broker.outstanding(), [2]);
  });

  it('reports held PUBACKs when they are released', async () => {
    broker.pauseAcks();
    client.publish('t/gate', 'held', { qos: 1 });
    await waitFor(() => broker.published.messages === 1, 5000, 'the publish');
    assert.deepEqual(acked, []);
    broker.resumeAcks();
    await waitFor(() => acked.length === 1, 5000, 'the released PUBACK');
    assert.deepEqual(acked, ['held']);
  });
});
