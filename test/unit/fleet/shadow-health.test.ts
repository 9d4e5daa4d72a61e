// The shadow's health summary between changes (src/fleet/shadow-sync.ts), on fake time and a
// control channel the test answers: sent again every reportInterval only when it changed and only
// while connected; a 413 (over the shadow's 8 KB) is reported with what to shorten, never retried.

import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import { ShadowSync, type ShadowHost } from '../../../src/fleet/shadow-sync.js';
import type { ReloadOutcome } from '../../../src/reload.js';
import type { Control, ControlHandler } from '../../../src/uplink/control.js';
import { FakeClock } from '../../helpers/fake-clock.js';

const PREFIX = '$aws/things/gw/shadow/name/edgegw';
const INTERVAL = 15 * 60_000;

/** Acknowledges every publish at once and keeps it; replies only when the test delivers them. */
class AnsweringControl implements Control {
  connected = true;
  readonly handlers = new Set<ControlHandler>();
  readonly published: { topic: string; body: Record<string, unknown> }[] = [];
  subscribe(): Promise<void> {
    return Promise.resolve();
  }
  unsubscribe(): Promise<void> {
    return Promise.resolve();
  }
  publish(topic: string, payload: string | Buffer): Promise<void> {
    this.published.push({ topic, body: JSON.parse(payload.toString()) as Record<string, unknown> });
    return Promise.resolve();
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
  updates(): Record<string, unknown>[] {
    return this.published
      .filter((p) => p.topic === `${PREFIX}/update`)
      .map((p) => (p.body.state as { reported: Record<string, unknown> }).reported);
  }
  last(topic: string): Record<string, unknown> {
    const p = this.published.filter((x) => x.topic === `${PREFIX}/${topic}`).at(-1);
    assert.ok(p !== undefined, `nothing published on ${topic}`);
    return p.body;
  }
}

const tick = async () => {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
};

function setup() {
  const clock = new FakeClock();
  const control = new AnsweringControl();
  const lines: Record<string, unknown>[] = [];
  const log = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    }),
  );
  const health = { uplink: 'connected', backlogReadings: 0 } as Record<string, string | number | null>;
  const host: ShadowHost = {
    control,
    thing: 'gw',
    settings: { name: 'edgegw', localOnly: [], revertAfterMs: 60_000, reportIntervalMs: INTERVAL },
    dataDir: '/nonexistent',
    clock,
    log,
    version: '0.0.0-test',
    stored: null,
    storedRefused: null,
    // No change is applied here, so nothing is ever sealed with these.
    keys: {
      sealFile: () => {
        throw new Error('no overlay is stored in these tests');
      },
      openFile: () => {
        throw new Error('no overlay is stored in these tests');
      },
    },
    overlay: () => ({}),
    apply: () => Promise.reject<ReloadOutcome>(new Error('no change expected')),
    siteDocument: () => ({ queue: { flush: '1s' }, sensors: [] }),
    configHash: () => 'abc',
    health: () => ({ ...health }),
    link: () => ({ state: 'connected', reconnects: 0, delivered: 0, backlog: 0, lastError: null }),
  };
  return { clock, control, lines, health, sync: new ShadowSync(host) };
}

/** The first get answered with an empty shadow: the daemon's first full report goes out. */
async function firstReport(s: ReturnType<typeof setup>): Promise<void> {
  await s.sync.start();
  const token = s.control.last('get').clientToken as string;
  s.control.deliver(`${PREFIX}/get/accepted`, { state: {}, version: 1, clientToken: token });
  await tick();
  assert.equal(s.control.updates().length, 1);
}

describe('shadow health summary between changes', () => {
  it('is sent again every reportInterval only when it changed, alone, and only while connected', async () => {
    const s = setup();
    await firstReport(s);
    s.clock.advance(INTERVAL);
    await tick();
    assert.equal(s.control.updates().length, 1, 'unchanged: nothing sent');

    s.health.backlogReadings = 42;
    s.clock.advance(INTERVAL - 1);
    await tick();
    assert.equal(s.control.updates().length, 1, 'not before the interval');
    s.clock.advance(1);
    await tick();
    assert.deepEqual(s.control.updates()[1], {
      edgegw: { health: { uplink: 'connected', backlogReadings: 42 } },
    });

    s.health.backlogReadings = 7;
    s.control.connected = false;
    s.clock.advance(INTERVAL);
    await tick();
    assert.equal(s.control.updates().length, 2, 'offline: skipped, not queued');
    s.control.connected = true;
    s.clock.advance(INTERVAL);
    await tick();
    assert.equal(s.control.updates().length, 3);
    await s.sync.stop();
  });

  it('a 413 says the document is over 8 KB and what to shorten, and is not retried', async () => {
    const s = setup();
    await firstReport(s);
    const token = s.control.last('update').clientToken as string;
    const gets = s.control.published.length;
    s.control.deliver(`${PREFIX}/update/rejected`, {
      code: 413,
      message: 'The payload exceeds the maximum size allowed',
      clientToken: token,
    });
    const err = s.sync.status().lastError ?? '';
    assert.match(err, /8 KB of desired \+ reported/);
    assert.match(err, /reported is \d+ bytes/);
    assert.match(err, /shorten desired/);
    assert.ok(
      s.lines.some((l) => l.code === 'EDGEGW_E_FLEET_SHADOW' && String(l.msg).includes('413')),
      'logged with its code',
    );
    s.clock.advance(10 * 60_000);
    await tick();
    assert.equal(s.control.published.length, gets, 'neither a get nor a report again');
    await s.sync.stop();
  });
});
