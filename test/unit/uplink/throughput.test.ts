import assert from 'node:assert/strict';
import { RATE_WINDOW_MS, RateWindow, Throughput } from '../../../src/uplink/throughput.js';
import { FakeClock } from './fake-clock.js';

describe('uplink/throughput', () => {
  it('gives the rate over the last 10 s, and over the time since start while that is shorter', () => {
    const clock = new FakeClock();
    const w = new RateWindow(clock);
    w.add(5);
    assert.equal(w.perSecond(), 0, 'under a second of history says nothing yet');
    for (let i = 0; i < 4; i++) {
      clock.advance(1000);
      w.add(5);
    }
    // 25 in 4 s since start
    assert.equal(w.perSecond(), 25 / 4);
    for (let i = 0; i < 20; i++) {
      clock.advance(1000);
      w.add(10);
    }
    assert.equal(w.perSecond(), 10, 'only the last 10 s count');
    clock.advance(5000);
    assert.equal(w.perSecond(), 5, 'half the window is silent');
    clock.advance(RATE_WINDOW_MS);
    assert.equal(w.perSecond(), 0, 'an idle window reads 0, not the last rate');
  });

  it('forgets buckets after a long silence, however long', () => {
    const clock = new FakeClock();
    const w = new RateWindow(clock, 3000);
    clock.advance(1000);
    w.add(300);
    clock.advance(86_400_000);
    w.add(30);
    assert.equal(w.perSecond(), 10);
  });

  it('counts publishes, bytes and reconnects since start, and their recent rates', () => {
    const clock = new FakeClock();
    const t = new Throughput(clock);
    t.connected();
    for (let i = 0; i < 100; i++) {
      t.sent(1000);
      clock.advance(100); // 10 publishes/s, 10 kB/s
    }
    t.connected();
    t.connected();
    const s = t.snapshot();
    assert.equal(s.publishesTotal, 100);
    assert.equal(s.bytesTotal, 100_000);
    assert.equal(s.reconnects, 2);
    assert.equal(s.windowS, 10);
    assert.ok(Math.abs(s.publishesPerSecond - 10) <= 1, `${s.publishesPerSecond}`);
    assert.ok(Math.abs(s.bytesPerSecond - 10_000) <= 1000, `${s.bytesPerSecond}`);
  });
});
