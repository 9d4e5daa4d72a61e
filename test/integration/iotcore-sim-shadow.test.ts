// The Device Shadow simulator (src/demo/iotcore-sim/shadow.ts) speaks AWS's documented shapes, with
// a raw mqtt.js client over real TLS to the real test broker: 404 before the shadow exists;
// versions from 1; delta only for desired keys that differ from reported (objects key by key,
// arrays whole); null deletes; 409 on a stale version; 400 without state; client tokens echoed;
// an injected 429.

import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import { createDemoPki } from '../../src/demo/pki.js';
import { startTlsBroker, type TlsBroker } from '../../src/demo/broker.js';
import { ShadowService } from '../../src/demo/iotcore-sim/shadow.js';
import { waitFor } from '../helpers/site.js';

const THING = 'sim-gw1';
const P = `$aws/things/${THING}/shadow/name/cfg`;
const pki = createDemoPki(THING);

describe('Device Shadow simulator', function () {
  this.timeout(20_000);
  let broker: TlsBroker;
  let shadow: ShadowService;
  let client: mqtt.MqttClient;
  const got: { topic: string; body: Record<string, unknown> }[] = [];

  beforeEach(async () => {
    got.length = 0;
    broker = await startTlsBroker({ pki, iotcore: true });
    shadow = new ShadowService(broker.aedes, { now: () => 1_764_380_000_000 });
    client = await mqtt.connectAsync(broker.url, {
      ca: pki.caCert,
      cert: pki.clientCert,
      key: pki.clientKey,
      clientId: THING,
      reconnectPeriod: 0,
    });
    client.on('message', (topic, payload) =>
      got.push({ topic, body: JSON.parse(payload.toString()) as Record<string, unknown> }),
    );
    await client.subscribeAsync(
      [
        'get/accepted',
        'get/rejected',
        'update/accepted',
        'update/rejected',
        'update/delta',
        'update/documents',
      ].map((t) => `${P}/${t}`),
      { qos: 1 },
    );
  });
  afterEach(async () => {
    await client.endAsync();
    shadow.close();
    await broker.close();
  });

  async function ask(op: string, body: unknown, reply: string): Promise<Record<string, unknown>> {
    const n = got.length;
    await client.publishAsync(`${P}/${op}`, JSON.stringify(body), { qos: 1 });
    await waitFor(() => got.slice(n).some((g) => g.topic === `${P}/${reply}`), 5000, reply);
    return got.slice(n).find((g) => g.topic === `${P}/${reply}`)!.body;
  }

  it('answers get, update and delta in the documented shapes', async () => {
    const missing = await ask('get', { clientToken: 't0' }, 'get/rejected');
    assert.equal(missing.code, 404);
    assert.equal(missing.clientToken, 't0');

    const first = await ask(
      'update',
      { state: { reported: { a: 1, o: { x: 1, y: 2 }, l: [1] } }, clientToken: 't1' },
      'update/accepted',
    );
    assert.equal(first.version, 1);
    assert.equal(first.timestamp, 1_764_380_000);
    assert.equal(first.clientToken, 't1');
    assert.equal(
      got.filter((g) => g.topic.endsWith('/update/delta')).length,
      0,
      'no delta for reported alone',
    );

    shadow.setDesired(THING, 'cfg', { a: 1, o: { x: 1, y: 3 }, l: [1, 2], n: 'new' });
    await waitFor(() => got.some((g) => g.topic === `${P}/update/delta`), 5000, 'delta');
    const delta = got.find((g) => g.topic === `${P}/update/delta`)!.body;
    assert.deepEqual(delta.state, { o: { y: 3 }, l: [1, 2], n: 'new' });
    assert.equal(delta.version, 2);

    const full = await ask('get', { clientToken: 't2' }, 'get/accepted');
    assert.deepEqual((full.state as { delta: unknown }).delta, { o: { y: 3 }, l: [1, 2], n: 'new' });
    assert.equal(full.version, 2);

    await ask('update', { state: { desired: { n: null } } }, 'update/accepted');
    assert.deepEqual(shadow.document(THING, 'cfg')!.desired, { a: 1, o: { x: 1, y: 3 }, l: [1, 2] });
    const docs = got.filter((g) => g.topic === `${P}/update/documents`).at(-1)!.body;
    assert.equal((docs.previous as { version: number }).version, 2);
    assert.equal((docs.current as { version: number }).version, 3);
  });

  it('rejects a stale version (409), a missing state (400), and what a test injects (429)', async () => {
    await ask('update', { state: { reported: { a: 1 } } }, 'update/accepted');
    const conflict = await ask(
      'update',
      { state: { reported: { a: 2 } }, version: 7, clientToken: 'v' },
      'update/rejected',
    );
    assert.equal(conflict.code, 409);
    assert.equal(conflict.clientToken, 'v');
    const bad = await ask('update', { nostate: true }, 'update/rejected');
    assert.equal(bad.code, 400);
    shadow.failNext(429, 'Too Many Requests');
    const busy = await ask('get', {}, 'get/rejected');
    assert.equal(busy.code, 429);
    assert.equal(shadow.document(THING, 'cfg')!.version, 1);
  });
});
