// The control channel (src/uplink/control.ts) on a real TLS broker: request/response topics on
// the uplink's own connection, subscribed again after every reconnect before onUp fires, beside
// telemetry that still flows.

import assert from 'node:assert/strict';
import { createDemoPki, type DemoPki } from '../../src/demo/pki.js';
import { startTlsBroker, type TlsBroker } from '../../src/demo/broker.js';
import type { Uplink } from '../../src/uplink/uplink.js';
import { waitFor } from '../helpers/site.js';
import { MemorySource } from '../unit/uplink/memory-source.js';
import { GW, makeUplink } from './uplink-support.js';

describe('uplink control channel (real TLS broker)', function () {
  this.timeout(30_000);
  let pki: DemoPki;
  let broker: TlsBroker;
  let uplink: Uplink | null = null;

  before(() => {
    pki = createDemoPki(GW);
  });
  beforeEach(async () => {
    broker = await startTlsBroker({ pki, iotcore: true });
  });
  afterEach(async () => {
    await uplink?.stop();
    uplink = null;
    await broker.close();
  });

  it('answers a request on its own topics, again after a reconnect, while telemetry flows', async () => {
    const source = new MemorySource();
    uplink = makeUplink(broker, pki, source);
    const control = uplink.control;
    const got: string[] = [];
    control.onMessage((topic, payload) => got.push(`${topic} ${payload.toString()}`));
    let ups = 0;
    control.onUp(() => ups++);
    await control.subscribe([`$aws/things/${GW}/shadow/get/accepted`]);
    // A simulated service: answers each get on the accepted topic.
    broker.aedes.on('publish', (packet, client) => {
      if (client?.id !== GW || packet.topic !== `$aws/things/${GW}/shadow/get`) return;
      broker.aedes.publish(
        {
          cmd: 'publish',
          topic: `${packet.topic}/accepted`,
          payload: Buffer.from(`{"n":${ups}}`),
          qos: 1,
          dup: false,
          retain: false,
        },
        () => undefined,
      );
    });
    await assert.rejects(control.publish(`$aws/things/${GW}/shadow/get`, '{}'), /not connected/);
    await uplink.start();
    await waitFor(() => control.connected, 10_000, 'the control channel up');
    assert.equal(ups, 1);
    await control.publish(`$aws/things/${GW}/shadow/get`, '{}');
    await waitFor(() => got.length === 1, 5000, 'the first reply');
    assert.equal(got[0], `$aws/things/${GW}/shadow/get/accepted {"n":1}`);

    broker.dropConnections();
    await waitFor(() => ups === 2 && control.connected, 10_000, 'the channel up again after the reconnect');
    await control.publish(`$aws/things/${GW}/shadow/get`, '{}');
    await waitFor(() => got.length === 2, 5000, 'the reply after the reconnect (subscribed again)');
    assert.equal(got[1], `$aws/things/${GW}/shadow/get/accepted {"n":2}`);

    source.append(3);
    await waitFor(() => source.acked.length === 3, 10_000, 'telemetry delivered beside the control topics');
  });
});
