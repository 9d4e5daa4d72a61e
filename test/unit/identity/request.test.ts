// One provisioning request over the control channel, with an injected clock: the timeout covers
// the whole exchange, a PUBACK that never comes included (a broker holding acknowledgements must
// not hang a provision or a rotation), and a rejected reply carries AWS's code and message.

import assert from 'node:assert/strict';
import { EdgegwError } from '../../../src/errors.js';
import { request } from '../../../src/identity/request.js';
import type { Control, ControlHandler } from '../../../src/uplink/control.js';
import { FakeClock } from '../../helpers/fake-clock.js';

/** A control channel whose broker never acknowledges, and replies only when told. */
class SilentControl implements Control {
  readonly connected = true;
  readonly handlers = new Set<ControlHandler>();
  readonly subscribed = new Set<string>();
  subscribe(f: string[]): Promise<void> {
    for (const x of f) this.subscribed.add(x);
    return Promise.resolve();
  }
  unsubscribe(f: string[]): Promise<void> {
    for (const x of f) this.subscribed.delete(x);
    return Promise.resolve();
  }
  publish(): Promise<void> {
    return new Promise<void>(() => undefined); // no PUBACK, ever
  }
  onMessage(h: ControlHandler): () => void {
    this.handlers.add(h);
    return () => this.handlers.delete(h);
  }
  onUp(): () => void {
    return () => undefined;
  }
  deliver(topic: string, body: object): void {
    for (const h of this.handlers) h(topic, Buffer.from(JSON.stringify(body)));
  }
}

const tick = () => new Promise<void>((r) => setImmediate(r));

describe('identity request over the control channel', () => {
  it('times out when the PUBACK never comes, and unsubscribes', async () => {
    const clock = new FakeClock();
    const control = new SilentControl();
    const r = request({ control, clock, timeoutMs: 1000 }, '$aws/certificates/create/json', {}, 'X');
    const settled = r.then(
      () => 'resolved',
      (e: unknown) => e,
    );
    await tick();
    clock.advance(1000);
    const err = await settled;
    assert.ok(err instanceof EdgegwError);
    assert.equal(err.code, 'EDGEGW_E_PROVISION_TIMEOUT');
    assert.match(err.message, /no reply to X .* within 1 s/);
    await tick();
    assert.equal(control.subscribed.size, 0);
    assert.equal(control.handlers.size, 0);
  });

  it('a reply ends it even before its PUBACK; a rejection shows errorCode, statusCode, message', async () => {
    const clock = new FakeClock();
    const control = new SilentControl();
    const r = request({ control, clock, timeoutMs: 1000 }, 't', {}, 'CreateKeysAndCertificate');
    await tick();
    assert.deepEqual([...control.subscribed].sort(), ['t/accepted', 't/rejected']);
    control.deliver('t/rejected', {
      statusCode: 429,
      errorCode: 'ThrottlingException',
      errorMessage: 'Rate exceeded',
    });
    await assert.rejects(r, /CreateKeysAndCertificate rejected \(ThrottlingException 429\): Rate exceeded/);

    const ok = request({ control, clock, timeoutMs: 1000 }, 't', {}, 'Y');
    await tick();
    control.deliver('t/accepted', { certificateId: 'abc' });
    assert.deepEqual(await ok, { certificateId: 'abc' });
  });
});
