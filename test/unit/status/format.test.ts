import assert from 'node:assert/strict';
import { bytes, duration, formatStatus } from '../../../src/status/format.js';
import { fixture, T0 } from './support.js';

describe('formatStatus', () => {
  function sample() {
    const f = fixture();
    f.model.registerSensors(['boiler-temp', 'door-1', 'never-read']);
    f.model.reading({ sensor: 'boiler-temp', ts: T0 - 1500, value: 21.6, quality: 'good' });
    f.model.reading({ sensor: 'door-1', ts: T0 - 125_000, value: true, quality: 'bad' });
    f.model.error('door-1', 'EDGEGW_E_GPIO', 'pin gone');
    f.model.error('door-1', 'EDGEGW_E_GPIO', 'pin gone');
    f.model.committed(40);
    f.model.delivered(30);
    f.model.message();
    f.clock.advance(3_723_000); // up 1h02m03s
    return f;
  }

  it('names the sealing queue key and the older keys still with records, when the daemon sends them', () => {
    const f = fixture();
    f.queue.keys = { sealing: 'ab'.repeat(16), older: 1 };
    const text = formatStatus(f.model.snapshot(), T0);
    assert.match(
      text,
      new RegExp(
        `^keys +sealing with key id ${'ab'.repeat(16)} · 1 older key still with queued records$`,
        'm',
      ),
    );
    assert.deepEqual(f.model.snapshot().queue.keys, { sealing: 'ab'.repeat(16), older: 1 });
    // An older daemon's snapshot has no keys: no line.
    assert.doesNotMatch(formatStatus(fixture().model.snapshot(), T0), /^keys/m);
  });

  it('shows the header, queue, counters and one row per sensor', () => {
    const { model } = sample();
    const now = T0 + 3_723_000;
    const text = formatStatus(model.snapshot(), now);
    const lines = text.split('\n');
    assert.match(lines[0]!, /edgegw 1\.2\.3 · gateway site-042-gw1 · up 1h02m/);
    assert.match(lines[1]!, /^uplink +connected for 1h02m · broker\.example:8883 · in flight 3$/);
    assert.match(lines[2]!, /^queue +2 records · 40 readings · 1\.2 KiB · oldest 1h02m old · next seq 12$/);
    assert.match(
      lines[3]!,
      /read 2 · committed 40 \(written 40\) · delivered 30 · dropped 0 · quarantined 0 records · 1 messages/,
    );
    const header = lines.findIndex((l) => l.startsWith('SENSOR'));
    assert.ok(header > 3, text);
    assert.match(lines[header]!, /^SENSOR +VALUE +QUALITY +AGE +ERRORS +LAST ERROR$/);
    const rows = lines.slice(header + 1).filter((l) => l !== '');
    assert.equal(rows.length, 3, text);
    assert.match(rows[0]!, /^boiler-temp +21\.6 +good +1h02m +0$/);
    assert.match(rows[1]!, /^door-1 +true +bad +1h04m +2 +EDGEGW_E_GPIO$/);
    assert.match(rows[2]!, /^never-read +- +- +never read +0$/);
    assert.ok(text.endsWith('\n'));
    assert.doesNotMatch(text, /pin gone/);
  });

  it('shows which configuration runs: file, hash, how long ago it was loaded', () => {
    const { model } = sample();
    const snap = {
      ...model.snapshot(),
      config: { file: '/etc/edgegw/site.yaml', loadedAt: T0, hash: '0123456789ab' },
    };
    const text = formatStatus(snap, T0 + 125_000);
    assert.match(text, /^config +\/etc\/edgegw\/site\.yaml · hash 0123456789ab · loaded 2m05s ago$/m);
    assert.doesNotMatch(formatStatus(model.snapshot(), T0), /^config/m);
  });

  it('shows a short uptime in whole seconds', () => {
    const { model, clock } = fixture();
    clock.advance(5_400);
    assert.match(formatStatus(model.snapshot(), T0), /· up 5s\n/);
  });

  it('aligns the columns of the sensor table', () => {
    const { model } = sample();
    const lines = formatStatus(model.snapshot(), T0).split('\n');
    const header = lines.findIndex((l) => l.startsWith('SENSOR'));
    const table = lines.slice(header).filter((l) => l !== '');
    const qualityCol = table[0]!.indexOf('QUALITY');
    // Right-aligned VALUE column ends where QUALITY's left-aligned column starts minus the gap.
    for (const row of table.slice(1)) assert.equal(row.slice(qualityCol - 2, qualityCol), '  ', row);
  });

  it('warns about drops, quarantine, the clock and overruns, with their codes', () => {
    const { model, clockIssue, uplink } = sample();
    model.dropped(5);
    model.quarantined(1);
    model.overrun('rs485-1', 4);
    clockIssue.text = 'wall clock is before the build date';
    uplink.state = 'backoff';
    uplink.lastError = 'EDGEGW_E_UPLINK_TLS';
    const text = formatStatus(model.snapshot(), T0);
    assert.match(text, /uplink +backoff .*last error EDGEGW_E_UPLINK_TLS/);
    assert.match(text, /5 readings dropped .*EDGEGW_E_QUEUE_FULL/);
    assert.match(text, /1 records quarantined .*EDGEGW_E_QUEUE_TAMPERED/);
    assert.match(text, /clock: wall clock is before the build date \(EDGEGW_E_CLOCK\)/);
    assert.match(text, /rs485-1 fell behind 1 times, 4 polls skipped \(EDGEGW_E_SENSOR_OVERRUN\)/);
  });

  it('says nothing about oldest when the queue is empty and shows no warnings when all is well', () => {
    const { model, queue } = fixture();
    queue.oldestTs = null;
    queue.records = 0;
    const text = formatStatus(model.snapshot(), T0);
    assert.doesNotMatch(text, /oldest/);
    assert.doesNotMatch(text, /warning/);
  });

  it('formats durations and sizes for people', () => {
    assert.equal(duration(0), '0.0s');
    assert.equal(duration(1530), '1.5s');
    assert.equal(duration(42_000), '42s');
    assert.equal(duration(185_000), '3m05s');
    assert.equal(duration(7_620_000), '2h07m');
    assert.equal(duration(3 * 86_400_000 + 4 * 3_600_000), '3d04h');
    assert.equal(duration(-5), '0s');
    assert.equal(bytes(512), '512 B');
    assert.equal(bytes(1536), '1.5 KiB');
    assert.equal(bytes(256 * 1024 * 1024), '256 MiB');
  });
});
