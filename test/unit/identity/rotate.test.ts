// The rotation's proof through a seam: a fake uplink and control channel (answering
// CreateCertificateFromCsr with a certificate signed by a real test CA), fake time, real files.
// The race it guards: the new certificate's connection waits up to 1.1 s (IoT Core's CONNECT
// spacing); a connection that comes up in that wait is the old certificate's and must not count
// as the proof, or an unproven certificate would be committed.

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { SiteConfig } from '../../../src/config/schema.js';
import { createDemoPki, signCertificateRequest } from '../../../src/demo/pki.js';
import { rotateCertificate, type RotatableUplink } from '../../../src/identity/rotate.js';
import type { Control, ControlHandler } from '../../../src/uplink/control.js';
import type { UplinkSettings, UplinkState } from '../../../src/uplink/uplink.js';
import { FakeClock, settle } from '../../helpers/fake-clock.js';

const CSR_TOPIC = '$aws/certificates/create-from-csr/json';
const PROOF_TOPIC = 'edgegw/gw1/identity';

/** A connection that acknowledges every publish; `connection` counts the CONNACKs it announced. */
class FakeControl implements Control {
  connected = true;
  connection = 1;
  readonly published: { topic: string; connection: number }[] = [];
  private readonly handlers = new Set<ControlHandler>();
  private readonly ups = new Set<() => void>();
  constructor(private readonly answer: (topic: string, payload: string) => object | null) {}
  subscribe(): Promise<void> {
    return Promise.resolve();
  }
  unsubscribe(): Promise<void> {
    return Promise.resolve();
  }
  publish(topic: string, payload: string | Buffer): Promise<void> {
    this.published.push({ topic, connection: this.connection });
    const reply = this.answer(topic, payload.toString());
    if (reply !== null) {
      setImmediate(() => {
        for (const h of [...this.handlers]) h(`${topic}/accepted`, Buffer.from(JSON.stringify(reply)));
      });
    }
    return Promise.resolve();
  }
  onMessage(h: ControlHandler): () => void {
    this.handlers.add(h);
    return () => this.handlers.delete(h);
  }
  onUp(h: () => void): () => void {
    this.ups.add(h);
    return () => this.ups.delete(h);
  }
  /** A new CONNACK with the subscriptions in place. */
  up(): void {
    this.connection++;
    this.connected = true;
    for (const h of [...this.ups]) h();
  }
}

class FakeUplink implements RotatableUplink {
  readonly reconfigured: UplinkSettings[] = [];
  stateCalls = 0;
  constructor(
    readonly control: FakeControl,
    private readonly since: number,
  ) {}
  reconfigure(next: UplinkSettings): { reconnected: boolean } {
    this.reconfigured.push(next);
    this.control.connected = false; // the running connection ends; the next CONNACK is up()
    return { reconnected: true };
  }
  state(): UplinkState {
    this.stateCalls++;
    return { state: 'connected', broker: 'fake', since: this.since, inflight: 0, lastError: null };
  }
}

async function until(what: string, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise<void>((r) => setImmediate(r));
  }
}

describe('certificate rotation: the proof (seam)', function () {
  this.timeout(30_000);
  const pki = createDemoPki('gw1');
  let dir: string;
  let paths: { cert: string; key: string };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edgegw-rotate-'));
    paths = { cert: join(dir, 'device.pem'), key: join(dir, 'device.key') };
    await writeFile(paths.cert, pki.clientCert);
    await writeFile(paths.key, pki.clientKey, { mode: 0o600 });
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('a connection that comes back before the reconnect with the new certificate is not the proof', async () => {
    const clock = new FakeClock();
    let issued = '';
    const control = new FakeControl((topic, payload) => {
      if (topic !== CSR_TOPIC) return null;
      const csr = (JSON.parse(payload) as { certificateSigningRequest: string }).certificateSigningRequest;
      issued = signCertificateRequest(pki, csr);
      return { certificateId: 'c'.repeat(64), certificatePem: issued, certificateOwnershipToken: 't' };
    });
    // The running connection is new: the new certificate's CONNECT must wait 1.1 s.
    const uplink = new FakeUplink(control, clock.now());
    const tls = {
      ca: Buffer.from(pki.caCert),
      cert: Buffer.from(pki.clientCert),
      key: Buffer.from(pki.clientKey),
    };
    const identity = {
      thingNameAsGatewayId: false,
      replyTimeout: 10_000,
      rotation: { parameters: {}, proofTopic: 'edgegw/{gateway}/identity', proofTimeout: 30_000 },
    } as unknown as SiteConfig['identity'];
    const lines: string[] = [];
    let settled: 'resolved' | 'rejected' | null = null;
    const rotation = rotateCertificate({
      gatewayId: 'gw1',
      uplink,
      settings: { tls } as unknown as UplinkSettings,
      paths,
      identity,
      log: pino({ level: 'info' }, { write: (line: string) => void lines.push(line) }),
      clock,
    }).then(
      (details) => {
        settled = 'resolved';
        return details;
      },
      (err: unknown) => {
        settled = 'rejected';
        throw err;
      },
    );
    // The proof has begun (it asks the uplink's state for the CONNECT spacing).
    await until('the proof to begin', () => uplink.stateCalls > 0);

    // The old connection drops and comes back inside the spacing wait, acknowledging publishes.
    control.up();
    await settle();
    await settle();
    assert.equal(settled, null, 'the rotation is not done on the old certificate');
    assert.deepEqual(
      control.published.filter((p) => p.topic === PROOF_TOPIC),
      [],
      'no proof publish on the old connection',
    );
    assert.equal(uplink.reconfigured.length, 0);
    assert.equal(await readFile(paths.cert, 'utf8'), pki.clientCert, 'nothing committed');

    // The wait ends: the uplink reconnects with the new certificate; its CONNACK is the proof's.
    await clock.advanceAsync(1100);
    assert.equal(uplink.reconfigured.length, 1);
    assert.equal(uplink.reconfigured[0]!.tls.cert.toString(), issued);
    assert.equal(settled, null, 'no proof before the new connection is up');
    control.up();
    const details = await rotation;
    assert.equal(details.certificateId, 'c'.repeat(64));
    const proofs = control.published.filter((p) => p.topic === PROOF_TOPIC);
    assert.deepEqual(proofs, [{ topic: PROOF_TOPIC, connection: control.connection }]);
    assert.equal(await readFile(paths.cert, 'utf8'), issued, 'committed after the proof');
    assert.equal(await readFile(`${paths.cert}.previous`, 'utf8'), pki.clientCert);
    assert.equal(lines.filter((l) => l.includes('"result":"rotated"')).length, 1, lines.join(''));
  });
});
