import assert from 'node:assert/strict';
import type { TSchema } from '@sinclair/typebox';
import { diffConfig, describeChange, planReload, ruleFor } from '../../../src/config/diff.js';
import { SiteSchema } from '../../../src/config/schema.js';

const base = {
  gateway: { id: 'gw-1', dataDir: '/var/lib/edgegw' },
  uplink: { url: 'mqtts://a:8883', key: '/etc/edgegw/device.key', limits: { inflight: 16 } },
  queue: { keyFile: '/etc/edgegw/queue.key', flush: 200 },
  buses: { 'rs485-1': { timeout: 500 }, 'plc-1': { timeout: 1000 } },
  sensors: [
    { id: 'a', bus: 'rs485-1', address: 0 },
    { id: 'b', sim: { wave: 'sine' } },
  ],
};
const clone = (): typeof base => structuredClone(base);

describe('config/diff', () => {
  it('finds nothing between equal configurations', () => {
    assert.deepEqual(diffConfig(base, clone()), []);
  });

  it('names changed leaves by dotted key path, sorted', () => {
    const next = clone();
    next.queue.flush = 500;
    next.uplink.limits.inflight = 8;
    assert.deepEqual(diffConfig(base, next), [
      { path: 'queue.flush', kind: 'changed' },
      { path: 'uplink.limits.inflight', kind: 'changed' },
    ]);
  });

  it('names list items by id, so an insertion does not shift later ones; whole entries added/removed', () => {
    const next = clone();
    next.sensors.unshift({ id: 'new-1', sim: { wave: 'counter' } });
    (next.sensors[2] as { sim: { wave: string } }).sim.wave = 'random';
    delete (next.buses as Record<string, unknown>)['plc-1'];
    const changes = diffConfig(base, next);
    assert.deepEqual(changes, [
      { path: 'buses.plc-1', kind: 'removed' },
      { path: 'sensors.b.sim.wave', kind: 'changed' },
      { path: 'sensors.new-1', kind: 'added' },
    ]);
    assert.deepEqual(changes.map(describeChange), [
      'buses.plc-1 (removed)',
      'sensors.b.sim.wave',
      'sensors.new-1 (added)',
    ]);
  });

  it('never carries a value, only paths (a changed secret shows as its key)', () => {
    const next = clone();
    next.uplink.key = '/secret/place/new.key';
    const text = JSON.stringify(diffConfig(base, next));
    assert.match(text, /uplink\.key/);
    assert.doesNotMatch(text, /secret|device\.key/);
  });

  it('plans: restart-only keys refuse the whole reload; the rest is sorted by stage', () => {
    const next = clone();
    next.gateway.id = 'gw-2';
    next.queue.flush = 300;
    const refused = planReload(diffConfig(base, next));
    assert.deepEqual(refused.restartNeeded, ['gateway.id']);
    next.gateway.id = 'gw-1';
    next.uplink.url = 'mqtts://b:8883';
    next.sensors.pop();
    const plan = planReload(diffConfig(base, next));
    assert.deepEqual(plan.restartNeeded, []);
    assert.deepEqual(Object.fromEntries(plan.live), {
      batcher: ['queue.flush'],
      sensors: ['sensors.b'],
      'uplink-connection': ['uplink.url'],
    });
  });

  it('a path no rule names needs a restart (the safe side)', () => {
    assert.equal(ruleFor('something.new'), undefined);
    assert.deepEqual(planReload([{ path: 'something.new', kind: 'added' }]).restartNeeded, ['something.new']);
  });

  it('has a rule for every key of the schema (a new key must say how it is reloaded)', () => {
    const missing: string[] = [];
    const walk = (s: TSchema, path: string): void => {
      const props = (s as { properties?: Record<string, TSchema> }).properties;
      if (props === undefined || s.type !== 'object') {
        if (ruleFor(path) === undefined) missing.push(path);
        return;
      }
      for (const [k, v] of Object.entries(props)) walk(v, path === '' ? k : `${path}.${k}`);
    };
    walk(SiteSchema, '');
    assert.deepEqual(missing, []);
    for (const p of [
      'gateway.dataDir',
      'queue.keyFile',
      'queue.previousKeyFiles',
      'queue.durability',
      'status.socket',
      'status.metrics',
    ])
      assert.equal(ruleFor(p), 'restart', p);
    for (const p of [
      'uplink.limits.inflight',
      'uplink.backoff.min',
      'uplink.topic',
      'uplink.ackTimeout',
      'uplink.compression',
    ])
      assert.equal(ruleFor(p), 'uplink', p);
  });
});
