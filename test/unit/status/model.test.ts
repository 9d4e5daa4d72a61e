import assert from 'node:assert/strict';
import { StatusModel } from '../../../src/status/model.js';
import { fixture, T0 } from './support.js';

describe('StatusModel', () => {
  it('has exactly the DESIGN.md §5 shape, plus overruns, clock and config', () => {
    const { model } = fixture();
    const s = model.snapshot();
    assert.deepEqual(Object.keys(s).sort(), [
      'clock',
      'config',
      'counters',
      'gateway',
      'overruns',
      'queue',
      'sensors',
      'uplink',
      'uptimeS',
      'version',
    ]);
    assert.deepEqual(Object.keys(s.uplink).sort(), ['broker', 'inflight', 'lastError', 'since', 'state']);
    assert.deepEqual(Object.keys(s.counters).sort(), [
      'committed',
      'delivered',
      'dropped',
      'messages',
      'quarantined',
      'readings',
    ]);
    assert.equal(s.gateway, 'site-042-gw1');
    assert.equal(s.version, '1.2.3');
  });

  it('shows the configuration running (file, load time, hash) when the daemon gives it', () => {
    const { clock } = fixture();
    const config = { file: '/etc/edgegw/site.yaml', loadedAt: 1_764_380_000_000, hash: '0123456789ab' };
    const model = new StatusModel({
      gateway: 'gw',
      version: '1',
      clock,
      uplink: () => ({ state: 'offline', broker: '', since: 0, inflight: 0, lastError: null }),
      queue: () => ({ records: 0, readings: 0, bytes: 0, oldestTs: null, nextSeq: 1 }),
      config: () => config,
    });
    assert.deepEqual(model.snapshot().config, config);
    assert.equal(fixture().model.snapshot().config, null);
  });

  it('shows only the contract fields of the queue, with firstSeq', () => {
    const { model } = fixture();
    assert.deepEqual(model.snapshot().queue, {
      records: 2,
      readings: 40,
      bytes: 1234,
      oldestTs: T0 - 5000,
      nextSeq: 12,
      firstSeq: 10,
    });
  });

  it('reports firstSeq null when the queue does not say', () => {
    const { model, queue } = fixture();
    delete queue.firstSeq;
    assert.equal(model.snapshot().queue.firstSeq, null);
  });

  it('reads uplink and queue figures at snapshot time', () => {
    const { model, uplink, queue } = fixture();
    uplink.state = 'backoff';
    uplink.lastError = 'EDGEGW_E_UPLINK_TLS';
    queue.records = 99;
    const s = model.snapshot();
    assert.equal(s.uplink.state, 'backoff');
    assert.equal(s.uplink.lastError, 'EDGEGW_E_UPLINK_TLS');
    assert.equal(s.queue.records, 99);
  });

  it('counts uptime in whole seconds on the injected clock', () => {
    const { model, clock } = fixture();
    assert.equal(model.snapshot().uptimeS, 0);
    clock.advance(2999);
    assert.equal(model.snapshot().uptimeS, 2);
    clock.advance(3_600_000);
    assert.equal(model.snapshot().uptimeS, 3602);
  });

  it('lists registered sensors before their first reading, in order', () => {
    const { model } = fixture();
    model.registerSensors(['boiler-temp', 'door-1']);
    model.registerSensors(['boiler-temp']);
    assert.deepEqual(model.snapshot().sensors, [
      { id: 'boiler-temp', value: null, quality: null, ts: null, errors: 0, lastError: null },
      { id: 'door-1', value: null, quality: null, ts: null, errors: 0, lastError: null },
    ]);
  });

  it('keeps each sensor last value, quality and time, and counts readings', () => {
    const { model } = fixture();
    model.registerSensors(['boiler-temp', 'door-1']);
    model.reading({ sensor: 'boiler-temp', ts: T0, value: 21.5, quality: 'good' });
    model.reading({ sensor: 'boiler-temp', ts: T0 + 1000, value: 21.6, quality: 'stale' });
    model.reading({ sensor: 'door-1', ts: T0 + 10, value: true, quality: 'good' });
    model.reading({ sensor: 'unlisted', ts: T0 + 20, value: 3, quality: 'bad' });
    const s = model.snapshot();
    assert.equal(s.counters.readings, 4);
    assert.deepEqual(
      s.sensors.map((x) => [x.id, x.value, x.quality, x.ts]),
      [
        ['boiler-temp', 21.6, 'stale', T0 + 1000],
        ['door-1', true, 'good', T0 + 10],
        ['unlisted', 3, 'bad', T0 + 20],
      ],
    );
  });

  it('counts errors per sensor and keeps the last code, never the message', () => {
    const { model } = fixture();
    model.registerSensors(['a', 'b']);
    model.error('a', 'EDGEGW_E_SENSOR_READ', 'timeout after 500 ms secret-looking-text');
    model.error('a', 'EDGEGW_E_SERIAL', 'port gone');
    const s = model.snapshot();
    assert.deepEqual(
      s.sensors.map((x) => [x.id, x.errors, x.lastError]),
      [
        ['a', 2, 'EDGEGW_E_SERIAL'],
        ['b', 0, null],
      ],
    );
    assert.doesNotMatch(JSON.stringify(s), /secret-looking-text|port gone/);
  });

  it('sums overruns per scope', () => {
    const { model } = fixture();
    model.overrun('rs485-1', 2);
    model.overrun('plc-1', 1);
    model.overrun('rs485-1', 3);
    assert.deepEqual(model.snapshot().overruns, [
      { scope: 'rs485-1', events: 2, skipped: 5 },
      { scope: 'plc-1', events: 1, skipped: 1 },
    ]);
  });

  it('counts committed, delivered, dropped readings, quarantined records and messages', () => {
    const { model } = fixture();
    model.committed(10);
    model.committed(5);
    model.delivered(12);
    model.dropped(3);
    model.quarantined();
    model.quarantined(2);
    model.message();
    model.message();
    assert.deepEqual(model.snapshot().counters, {
      readings: 0,
      committed: 15,
      delivered: 12,
      dropped: 3,
      quarantined: 3,
      messages: 2,
    });
  });

  it('reports the clock issue', () => {
    const { model, clockIssue } = fixture();
    assert.deepEqual(model.snapshot().clock, { ok: true, issue: null });
    clockIssue.text = 'wall clock is before the build date';
    assert.deepEqual(model.snapshot().clock, { ok: false, issue: 'wall clock is before the build date' });
  });

  it('hands out copies: changing a snapshot changes nothing inside', () => {
    const { model } = fixture();
    model.reading({ sensor: 'a', ts: T0, value: 1, quality: 'good' });
    const s = model.snapshot();
    s.counters.readings = 100;
    s.sensors[0]!.value = 42;
    s.uplink.inflight = 77;
    const again = model.snapshot();
    assert.equal(again.counters.readings, 1);
    assert.equal(again.sensors[0]!.value, 1);
    assert.equal(again.uplink.inflight, 3);
  });
});
