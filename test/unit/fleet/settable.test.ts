// What a remote change may set (src/fleet/settable.ts): desired split into settable overlay paths
// and refusals, the reported view in the file's own shape, and what reported must delete.

import assert from 'node:assert/strict';
import {
  FILE_LEAVES,
  overlayHash,
  sameOverlay,
  settableView,
  splitDesired,
  staleReported,
  touchesUplink,
} from '../../../src/fleet/settable.js';

describe('fleet settable keys', () => {
  it('sets objects leaf by leaf, lists and scalar keys whole, and refuses everything else', () => {
    const { overlay, refused } = splitDesired(
      {
        sensors: [{ id: 'a', sim: { wave: 'counter' }, every: '1s' }],
        buses: { plc: { tcp: { port: 5020 } } },
        uplink: { limits: { inflight: 8 }, url: 'mqtts://x:8883', key: '/tmp/k' },
        queue: { flush: '5s', keyFile: '/tmp/q' },
        log: { level: 'debug' },
        gateway: { id: 'other' },
        edgegw: { version: 'x' },
      },
      [],
    );
    assert.deepEqual(overlay, {
      sensors: [{ id: 'a', sim: { wave: 'counter' }, every: '1s' }],
      'buses.plc.tcp.port': 5020,
      'uplink.limits.inflight': 8,
      'queue.flush': '5s',
      'log.level': 'debug',
    });
    assert.deepEqual(
      refused.map((r) => `${r.path} ${r.why}`),
      [
        'uplink.url not-settable',
        'uplink.key not-settable',
        'queue.keyFile not-settable',
        'gateway.id not-settable',
        'edgegw.version not-settable',
      ],
    );
  });

  it('refuses a file path under a settable section (a bus serial port); the bus settings beside it apply', () => {
    // From the schema's own marks, not a hand list: every Path-typed and secret-file leaf.
    assert.ok(FILE_LEAVES.includes('buses.*.rtu.port'), FILE_LEAVES.join(', '));
    assert.ok(FILE_LEAVES.includes('uplink.key') && FILE_LEAVES.includes('queue.keyFile'));
    const { overlay, refused } = splitDesired(
      { buses: { rs485: { rtu: { port: '/dev/ttyS9', baudRate: 19200 } } } },
      [],
    );
    assert.deepEqual(overlay, { 'buses.rs485.rtu.baudRate': 19200 });
    assert.deepEqual(
      refused.map((r) => `${r.path} ${r.why}`),
      ['buses.rs485.rtu.port not-settable'],
    );
    // A whole bus written at once is walked leaf by leaf too: its port is still refused.
    const whole = splitDesired({ buses: { b2: { rtu: { port: 'serial0' }, timeout: '2s' } } }, []);
    assert.deepEqual(whole.overlay, { 'buses.b2.timeout': '2s' });
    assert.deepEqual(
      whole.refused.map((r) => r.path),
      ['buses.b2.rtu.port'],
    );
  });

  it('refuses local-only keys, at, under and above the path the site file keeps', () => {
    const { overlay, refused } = splitDesired(
      {
        log: { level: 'debug' },
        buses: { plc: { timeout: '1s' }, other: { timeout: '2s' } },
        uplink: { limits: { inflight: 4 } },
      },
      ['log.level', 'buses.plc', 'uplink.limits.inflight'],
    );
    assert.deepEqual(overlay, { 'buses.other.timeout': '2s' });
    assert.deepEqual(
      refused.map((r) => `${r.path} ${r.why}`),
      ['log.level local-only', 'buses.plc.timeout local-only', 'uplink.limits.inflight local-only'],
    );
  });

  it('refuses a key with a dot (it would be read as two levels) and a scalar where an object goes', () => {
    const { overlay, refused } = splitDesired({ buses: { 'a.b': { timeout: '1s' } }, uplink: 'x' }, []);
    assert.deepEqual(overlay, {});
    assert.deepEqual(
      refused.map((r) => r.path),
      ['buses.a.b', 'uplink'],
    );
  });

  it('reports the settable part as the file writes it, the overlay over it', () => {
    const file = {
      gateway: { id: 'gw' },
      uplink: { url: 'mqtts://h:8883', key: '/k', limits: { inflight: 4, publishesPerSecond: 50 } },
      queue: { flush: '100ms', keyFile: '/q' },
      sensors: [{ id: 'a' }],
    };
    assert.deepEqual(settableView(file, { 'uplink.limits.inflight': 8, 'log.level': 'debug' }), {
      uplink: { limits: { inflight: 8, publishesPerSecond: 50 } },
      queue: { flush: '100ms' },
      sensors: [{ id: 'a' }],
      log: { level: 'debug' },
    });
  });

  it('leaves local-only keys out of the view (one local sensor: the whole list); an emptied section goes', () => {
    const file = {
      queue: { flush: '100ms' },
      buses: { plc: { timeout: '1s' }, io: { timeout: '2s' } },
      sensors: [{ id: 'a' }, { id: 'b' }],
      log: { level: 'info' },
    };
    assert.deepEqual(settableView(file, {}, ['queue.flush', 'buses.plc', 'sensors.a']), {
      buses: { io: { timeout: '2s' } },
      log: { level: 'info' },
    });
    assert.deepEqual(settableView(file, { 'log.level': 'debug' }, ['log.level']), {
      queue: { flush: '100ms' },
      buses: { plc: { timeout: '1s' }, io: { timeout: '2s' } },
      sensors: [{ id: 'a' }, { id: 'b' }],
    });
  });

  it('names what reported holds that no longer runs, never edgegw or a non-settable key', () => {
    const reported = {
      buses: { plc: { timeout: '1s' }, gone: { timeout: '1s' } },
      queue: { flush: '1s', whenFull: 'drop-oldest' },
      uplink: { url: 'stale' },
      edgegw: { version: '1' },
    };
    const next = { buses: { plc: { timeout: '1s' } }, queue: { flush: '1s' } };
    assert.deepEqual(staleReported(reported, next), ['buses.gone', 'queue.whenFull']);
  });

  it('hashes overlays regardless of key order; tells uplink changes apart', () => {
    assert.equal(overlayHash({ a: 1, b: { x: 1, y: 2 } }), overlayHash({ b: { y: 2, x: 1 }, a: 1 }));
    assert.notEqual(overlayHash({ a: 1 }), overlayHash({ a: 2 }));
    assert.ok(sameOverlay({ a: [1, 2] }, { a: [1, 2] }));
    assert.ok(!sameOverlay({ a: [1, 2] }, { a: [2, 1] }));
    assert.ok(touchesUplink(['sensors.x (added)', 'uplink.limits.inflight']));
    assert.ok(!touchesUplink(['sensors.uplink (added)', 'queue.flush']));
  });
});
