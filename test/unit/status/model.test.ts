import assert from 'node:assert/strict';
import { StatusModel } from '../../../src/status/model.js';
import { fixture, T0 } from './support.js';

describe('StatusModel', () => {
  it('keeps every field of DESIGN.md §5, plus overruns, clock, certificate and config', () => {
    const { model } = fixture();
    model.registerSensors(['a']);
    const s = model.snapshot();
    // Other parts of status add fields of their own (e.g. `config`): these must be there.
    for (const k of ['certificate', 'clock', 'config', 'counters', 'overruns', 'queue', 'sensors', 'uplink'])
      assert.ok(k in s, k);
    // The §5 document, field by field: status may add fields, never drop or rename one.
    const design: Record<string, string[]> = {
      uplink: ['state', 'broker', 'since', 'inflight', 'lastError'],
      queue: ['records', 'readings', 'bytes', 'oldestTs', 'nextSeq'],
      counters: ['readings', 'committed', 'delivered', 'dropped', 'quarantined', 'messages'],
    };
    for (const [part, keys] of Object.entries(design)) {
      for (const k of keys) assert.ok(k in (s as unknown as Record<string, object>)[part]!, `${part}.${k}`);
    }
    for (const k of ['id', 'value', 'quality', 'ts', 'errors'])
      assert.ok(k in s.sensors[0]!, `sensors[].${k}`);
    for (const k of ['gateway', 'version', 'uptimeS']) assert.ok(k in s, k);
    for (const k of ['bytesSent', 'rates', 'reconnects']) assert.ok(k in s.uplink, `uplink.${k}`);
    assert.deepEqual(Object.keys(s.counters).sort(), [
      'committed',
      'delivered',
      'dropped',
      'messages',
      'notices',
      'quarantined',
      'readings',
      'written',
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

  it('counts notice records apart from readings: counters.notices (since start) and queue.notices (queued)', () => {
    const { clock } = fixture();
    const model = new StatusModel({
      gateway: 'gw',
      version: '1',
      clock,
      uplink: () => ({ state: 'offline', broker: '', since: 0, inflight: 0, lastError: null }),
      queue: () => ({ records: 4, readings: 40, bytes: 0, oldestTs: null, nextSeq: 9, notices: 2 }),
      queueCounters: () => ({
        committedReadings: 60,
        deliveredReadings: 10,
        droppedReadings: 10,
        lostReadings: 0,
        quarantinedRecords: 0,
        notices: 3,
      }),
    });
    const s = model.snapshot();
    assert.equal(s.counters.notices, 3);
    assert.equal(s.queue.notices, 2);
    assert.equal(s.counters.committed, 60, 'a notice adds no reading');
  });

  it('shows only the contract fields of the queue, with firstSeq, backlog age and drain', () => {
    const { model } = fixture();
    assert.deepEqual(model.snapshot().queue, {
      records: 2,
      readings: 40,
      bytes: 1234,
      oldestTs: T0 - 5000,
      nextSeq: 12,
      firstSeq: 10,
      notices: 0,
      held: 0,
      ageS: 5,
      rates: null,
      drainS: null,
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
      { id: 'boiler-temp', value: null, quality: null, ts: null, errors: 0, lastError: null, ageS: null },
      { id: 'door-1', value: null, quality: null, ts: null, errors: 0, lastError: null, ageS: null },
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
      written: 15,
      delivered: 12,
      dropped: 3,
      quarantined: 3,
      messages: 2,
      notices: 0,
    });
  });

  it('reports the clock issue', () => {
    const { model, clockIssue } = fixture();
    assert.deepEqual(model.snapshot().clock, {
      ok: true,
      issue: null,
      synced: true,
      source: 'off',
      via: null,
      offsetMs: null,
      holding: false,
      pendingRanges: 0,
    });
    clockIssue.text = 'wall clock is before the build date';
    assert.deepEqual(
      { ok: model.snapshot().clock.ok, issue: model.snapshot().clock.issue },
      { ok: false, issue: 'wall clock is before the build date' },
    );
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
