// The snapshot fields status derives on the injected clock: uplink rates against the limits,
// backlog age and drain estimate, certificate days left, per-sensor age.

import assert from 'node:assert/strict';
import { StatusModel, type QueueCounters, type UplinkStatus } from '../../../src/status/model.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { T0 } from './support.js';

const DAY = 86_400_000;

function site() {
  const clock = new FakeClock(T0);
  const counters: QueueCounters = {
    committedReadings: 0,
    deliveredReadings: 0,
    droppedReadings: 0,
    lostReadings: 0,
    quarantinedRecords: 0,
  };
  const queue = { records: 0, readings: 0, bytes: 0, oldestTs: null as number | null, nextSeq: 1 };
  const uplink: UplinkStatus = {
    state: 'connected',
    broker: 'b:8883',
    since: T0,
    inflight: 0,
    lastError: null,
    throughput: {
      publishesTotal: 420,
      bytesTotal: 4_200_000,
      reconnects: 2,
      publishesPerSecond: 42.5,
      bytesPerSecond: 300_000,
      windowS: 10,
    },
    limits: { publishesPerSecond: 100, bytesPerSecond: 524_288 },
    certificate: {
      subject: 'CN=gw',
      notBefore: T0 - 300 * DAY,
      notAfter: T0 + 12 * DAY,
      daysLeft: 12,
      state: 'valid',
    },
  };
  const model = new StatusModel({
    gateway: 'gw',
    version: '1',
    clock,
    uplink: () => uplink,
    queue: () => queue,
    queueCounters: () => counters,
  });
  return { clock, counters, queue, uplink, model };
}

describe('StatusModel rates, ages and certificate', () => {
  it('shows the uplink rates against the limits, reconnects and bytes sent', () => {
    const { model } = site();
    const u = model.snapshot().uplink;
    assert.deepEqual(u.rates, {
      windowS: 10,
      publishesPerSecond: 42.5,
      bytesPerSecond: 300_000,
      limits: { publishesPerSecond: 100, bytesPerSecond: 524_288 },
    });
    assert.equal(u.reconnects, 2);
    assert.equal(u.bytesSent, 4_200_000);
  });

  it('has null rates and no certificate when the uplink does not say', () => {
    const { model, uplink } = site();
    delete uplink.throughput;
    delete uplink.certificate;
    const s = model.snapshot();
    assert.equal(s.uplink.rates, null);
    assert.equal(s.uplink.reconnects, 0);
    assert.equal(s.certificate, null);
  });

  it('estimates the drain from the recent delivery rate against the commit rate', () => {
    const { model, clock, counters, queue } = site();
    queue.readings = 10_000;
    queue.oldestTs = T0 - 3_600_000;
    assert.equal(model.snapshot().queue.drainS, null, 'no history yet');
    // 10 s of: 50 readings/s committed, 250 delivered → the backlog shrinks by 200/s.
    for (let i = 0; i < 10; i++) {
      clock.advance(1000);
      counters.committedReadings += 50;
      counters.deliveredReadings += 250;
      model.reading({ sensor: 's', ts: clock.now(), value: 1, quality: 'good' });
    }
    const q = model.snapshot().queue;
    assert.deepEqual(q.rates, { committedPerSecond: 50, deliveredPerSecond: 250 });
    assert.equal(q.drainS, 50, '10,000 readings at 200/s');
    assert.equal(q.ageS, 3610, 'backlog age on the wall clock');
  });

  it('says null while the backlog grows or holds, and once it is empty', () => {
    const { model, clock, counters, queue } = site();
    queue.readings = 500;
    queue.oldestTs = T0;
    for (let i = 0; i < 5; i++) {
      clock.advance(1000);
      counters.committedReadings += 100; // an outage: nothing delivered
      model.snapshot();
    }
    let q = model.snapshot().queue;
    assert.deepEqual(q.rates, { committedPerSecond: 100, deliveredPerSecond: 0 });
    assert.equal(q.drainS, null);
    queue.readings = 0;
    queue.oldestTs = null;
    q = model.snapshot().queue;
    assert.equal(q.ageS, null);
    assert.equal(q.drainS, null);
  });

  it('follows only the last window: an outage that ended no longer counts', () => {
    const { model, clock, counters, queue } = site();
    queue.readings = 1000;
    queue.oldestTs = T0;
    for (let i = 0; i < 30; i++) {
      clock.advance(1000);
      counters.committedReadings += 10;
      if (i >= 15) counters.deliveredReadings += 110; // the broker is back after 15 s
      model.snapshot();
    }
    const q = model.snapshot().queue;
    assert.ok(q.rates !== null);
    assert.equal(q.rates.deliveredPerSecond, 110);
    assert.equal(q.drainS, 10);
  });

  it('samples the counters at most once a second on the reading path', () => {
    const { clock, counters, queue } = site();
    queue.readings = 100;
    let asked = 0;
    const counted = new StatusModel({
      gateway: 'gw',
      version: '1',
      clock,
      uplink: () => site().uplink,
      queue: () => queue,
      queueCounters: () => (asked++, counters),
    });
    for (let i = 0; i < 1000; i++) {
      clock.advance(1);
      counted.reading({ sensor: 's', ts: clock.now(), value: i, quality: 'good' });
    }
    assert.equal(asked, 1);
  });

  it('gives each sensor the age of its last reading, on the wall clock', () => {
    const { model, clock } = site();
    model.registerSensors(['a', 'b']);
    model.reading({ sensor: 'a', ts: T0 - 1500, value: 1, quality: 'good' });
    clock.advance(2000);
    const s = model.snapshot().sensors;
    assert.deepEqual(
      s.map((x) => [x.id, x.ageS]),
      [
        ['a', 3.5],
        ['b', null],
      ],
    );
    clock.set(T0 - 60_000); // the wall clock stepped back behind the reading
    assert.equal(model.snapshot().sensors[0]!.ageS, 0);
  });

  it('warns about the device certificate under 30 days left, and when not valid', () => {
    const { model, uplink } = site();
    let c = model.snapshot().certificate!;
    assert.equal(c.daysLeft, 12);
    assert.equal(c.warning, true);
    uplink.certificate = { ...uplink.certificate!, daysLeft: 30 };
    assert.equal(model.snapshot().certificate!.warning, false);
    uplink.certificate = { ...uplink.certificate, daysLeft: 300, state: 'not-yet-valid' };
    c = model.snapshot().certificate!;
    assert.equal(c.warning, true);
    assert.deepEqual(Object.keys(c).sort(), [
      'daysLeft',
      'notAfter',
      'notBefore',
      'state',
      'subject',
      'warning',
    ]);
  });
});

describe('StatusModel on the reading path', () => {
  /** The site's clock, counting how often the monotonic clock is read. */
  function counted() {
    const s = site();
    let reads = 0;
    const monotonic = s.clock.monotonic.bind(s.clock);
    s.clock.monotonic = () => {
      reads++;
      return monotonic();
    };
    return { ...s, reads: () => reads };
  }

  it('reads the clock a few times a second of readings, not once per reading', () => {
    const { model, clock, reads } = counted();
    const before = reads();
    // 20,000 readings stamped over two seconds.
    for (let i = 0; i < 20_000; i++)
      model.reading({ sensor: `s${i % 20}`, ts: clock.now() + i / 10, value: 1, quality: 'good' });
    assert.ok(reads() - before <= 100, `${reads() - before} clock reads for 20,000 readings`);
    assert.ok(reads() - before >= 10, 'it still samples');
  });

  it('still samples the drain rates while readings keep one stamp (the clock held after a step back)', () => {
    const { model, clock, counters, queue } = counted();
    queue.readings = 10_000;
    queue.oldestTs = T0;
    const held = clock.now();
    // 20 s: an outage for the first 10, then 250 delivered a second. Only samples taken on the
    // way (every 256 readings) give the last 10 s alone; one from the start would average both.
    for (let s = 0; s < 20; s++) {
      clock.advance(1000);
      counters.committedReadings += 50;
      if (s >= 10) counters.deliveredReadings += 250;
      for (let i = 0; i < 300; i++) model.reading({ sensor: 's', ts: held, value: 1, quality: 'good' });
    }
    assert.deepEqual(model.snapshot().queue.rates, { committedPerSecond: 50, deliveredPerSecond: 250 });
  });
});
