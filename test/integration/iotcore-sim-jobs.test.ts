// The IoT Jobs simulator (src/demo/iotcore-sim/jobs.ts) speaks AWS's documented shapes, with a raw
// mqtt.js client over real TLS to the real test broker: start-next hands out the next execution
// and sets it IN_PROGRESS; update answers with executionState; statusDetails that break AWS's rules
// (key pattern and length, values of 1-1,024 characters without control characters) are rejected
// with InvalidRequest in the ErrorResponse shape; an update after the end is InvalidStateTransition;
// injected rejections (a throttled start-next, a refused final update) are used once each.

import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import { createDemoPki } from '../../src/demo/pki.js';
import { startTlsBroker, type TlsBroker } from '../../src/demo/broker.js';
import { JobsService } from '../../src/demo/iotcore-sim/jobs.js';
import { waitFor } from '../helpers/site.js';

const THING = 'sim-jobs-gw1';
const P = `$aws/things/${THING}/jobs`;
const pki = createDemoPki(THING);

describe('IoT Jobs simulator', function () {
  this.timeout(20_000);
  let broker: TlsBroker;
  let jobs: JobsService;
  let client: mqtt.MqttClient;
  const got: { topic: string; body: Record<string, unknown> }[] = [];

  beforeEach(async () => {
    got.length = 0;
    broker = await startTlsBroker({ pki, iotcore: true });
    jobs = new JobsService(broker.aedes);
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
        'notify-next',
        'start-next/accepted',
        'start-next/rejected',
        '+/update/accepted',
        '+/update/rejected',
      ].map((t) => `${P}/${t}`),
      { qos: 1 },
    );
  });
  afterEach(async () => {
    await client.endAsync();
    jobs.close();
    await broker.close();
  });

  async function ask(op: string, body: unknown, reply: string): Promise<Record<string, unknown>> {
    const n = got.length;
    await client.publishAsync(`${P}/${op}`, JSON.stringify(body), { qos: 1 });
    await waitFor(() => got.slice(n).some((g) => g.topic === `${P}/${reply}`), 5000, reply);
    return got.slice(n).find((g) => g.topic === `${P}/${reply}`)!.body;
  }
  const assertError = (r: Record<string, unknown>, code: string, token: string, message: RegExp) => {
    assert.equal(r.code, code);
    assert.equal(r.clientToken, token);
    assert.equal(typeof r.timestamp, 'number');
    assert.match(String(r.message), message);
  };

  it('start-next and update answer in the documented shapes; an update after the end is refused', async () => {
    jobs.createJob(THING, 'j1', { operation: 'reload' });
    await waitFor(() => got.some((g) => g.topic === `${P}/notify-next`), 5000, 'notify-next');
    const next = await ask('start-next', { clientToken: 'a' }, 'start-next/accepted');
    const e = next.execution as Record<string, unknown>;
    assert.equal(e.jobId, 'j1');
    assert.equal(e.status, 'IN_PROGRESS');
    assert.deepEqual(e.jobDocument, { operation: 'reload' });
    assert.equal(next.clientToken, 'a');
    const done = await ask(
      'j1/update',
      { status: 'SUCCEEDED', statusDetails: { 'op:name_1-x': 'ok' }, clientToken: 'b' },
      'j1/update/accepted',
    );
    assert.deepEqual(done.executionState, {
      status: 'SUCCEEDED',
      statusDetails: { 'op:name_1-x': 'ok' },
      versionNumber: 3,
    });
    assert.equal(done.clientToken, 'b');
    const again = await ask('j1/update', { status: 'FAILED', clientToken: 'c' }, 'j1/update/rejected');
    assertError(again, 'InvalidStateTransition', 'c', /already SUCCEEDED/);
    const none = await ask('start-next', { clientToken: 'd' }, 'start-next/accepted');
    assert.equal(none.execution, undefined);
  });

  it('rejects statusDetails that break AWS rules with InvalidRequest; the execution is unchanged', async () => {
    jobs.createJob(THING, 'j1', { operation: 'reload' });
    await ask('start-next', { clientToken: 's' }, 'start-next/accepted');
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ reason: '' }, /statusDetails\.reason must be a string of 1-1024 characters/],
      [{ reason: 'x'.repeat(1025) }, /statusDetails\.reason must be a string of 1-1024/],
      [{ reason: 'two\nlines' }, /without control characters/],
      [{ reason: 7 }, /statusDetails\.reason must be a string/],
      [{ 'has space': 'v' }, /key "has space" must be 1-128 characters of \[a-zA-Z0-9:_-\]/],
      [{ ['k'.repeat(129)]: 'v' }, /must be 1-128 characters/],
    ];
    for (const [statusDetails, why] of bad) {
      const r = await ask(
        'j1/update',
        { status: 'FAILED', statusDetails, clientToken: 't' },
        'j1/update/rejected',
      );
      assertError(r, 'InvalidRequest', 't', why);
    }
    const start = await ask(
      'start-next',
      { statusDetails: { a: '' }, clientToken: 'u' },
      'start-next/rejected',
    );
    assertError(start, 'InvalidRequest', 'u', /statusDetails\.a/);
    const e = jobs.execution(THING, 'j1')!;
    assert.equal(e.status, 'IN_PROGRESS');
    assert.deepEqual(e.history, ['QUEUED', 'IN_PROGRESS']);
    // The largest value allowed passes.
    await ask(
      'j1/update',
      { status: 'FAILED', statusDetails: { reason: 'y'.repeat(1024) } },
      'j1/update/accepted',
    );
    assert.equal(jobs.execution(THING, 'j1')!.status, 'FAILED');
  });

  it('injected rejections: a throttled start-next, a refused final update, each used once', async () => {
    jobs.createJob(THING, 'j1', { operation: 'reload' });
    jobs.failNext('start-next', 'RequestThrottled', 'Rate exceeded');
    jobs.failNext('final-update', 'InternalError', 'try again');
    const throttled = await ask('start-next', { clientToken: 'a' }, 'start-next/rejected');
    assertError(throttled, 'RequestThrottled', 'a', /Rate exceeded/);
    assert.equal(jobs.execution(THING, 'j1')!.status, 'QUEUED');
    await ask('start-next', { clientToken: 'b' }, 'start-next/accepted');
    // An IN_PROGRESS update is not a final one: it passes.
    await ask('j1/update', { status: 'IN_PROGRESS', clientToken: 'c' }, 'j1/update/accepted');
    const refused = await ask('j1/update', { status: 'SUCCEEDED', clientToken: 'd' }, 'j1/update/rejected');
    assertError(refused, 'InternalError', 'd', /try again/);
    assert.equal(jobs.execution(THING, 'j1')!.status, 'IN_PROGRESS');
    await ask('j1/update', { status: 'SUCCEEDED', clientToken: 'e' }, 'j1/update/accepted');
    assert.equal(jobs.execution(THING, 'j1')!.status, 'SUCCEEDED');
    assert.equal(jobs.requests.filter((r) => r.topic === `${P}/j1/update`).length, 3);
  });
});
