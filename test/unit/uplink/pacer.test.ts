import assert from 'node:assert/strict';
import {
  BILLING_STEP_BYTES,
  QuotaPacer,
  WINDOW_MARGIN,
  billingAligned,
  messageBytes,
  windowLimits,
} from '../../../src/uplink/pacer.js';
import { FakeClock } from './fake-clock.js';

const IOT = { publishesPerSecond: 100, bytesPerSecond: 512 * 1024, maxPayloadBytes: 128 * 1024 };
const FRAME_OVERHEAD = 40; // topic + MQTT header, roughly

/** The most events and bytes in any window [t, t + 1000 ms). */
function worstSecond(at: readonly number[], bytes: readonly number[]): { count: number; bytes: number } {
  let lo = 0;
  let sum = 0;
  const worst = { count: 0, bytes: 0 };
  for (let hi = 0; hi < at.length; hi++) {
    sum += bytes[hi]!;
    while (at[hi]! - at[lo]! >= 1000) sum -= bytes[lo++]!;
    worst.count = Math.max(worst.count, hi - lo + 1);
    worst.bytes = Math.max(worst.bytes, sum);
  }
  return worst;
}

/** A sender that publishes `sizes()` frames as soon as the pacer allows, its timers firing late by 0-3 ms. */
function drive(
  pacer: QuotaPacer,
  clock: FakeClock,
  seconds: number,
  size: () => number,
  /** Every this many ms the sender pauses (a GC, a slow read)… */
  pauseEvery = Infinity,
  /** …for this long. */
  pauseMs = 0,
) {
  const at: number[] = [];
  const bytes: number[] = [];
  let seed = 7;
  const rnd = (): number => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  const end = clock.now() + seconds * 1000;
  let n = size();
  let nextPause = clock.now() + pauseEvery;
  while (clock.now() < end) {
    if (clock.now() >= nextPause) {
      clock.advance(pauseMs);
      nextPause += pauseEvery;
    }
    const wait = pacer.waitMs(n);
    if (wait > 0) {
      clock.advance(wait + Math.floor(rnd() * 4));
      continue;
    }
    pacer.take(n);
    at.push(clock.now());
    bytes.push(n);
    n = size();
  }
  const rate = bytes.slice(1).reduce((a, b) => a + b, 0) / ((at.at(-1)! - at[0]!) / 1000);
  return { ...worstSecond(at, bytes), rate };
}

describe('QuotaPacer', () => {
  it('aims at ~10 KB messages under IoT Core quotas, full ones when quotas are lifted', () => {
    // 512 KiB/s ÷ 64 = 8 KiB, raised to just under two 5,000-byte billing steps.
    assert.equal(messageBytes(IOT), 9744);
    assert.ok(messageBytes(IOT) + 256 <= 2 * BILLING_STEP_BYTES);
    assert.equal(
      messageBytes({ ...IOT, publishesPerSecond: 1e6, bytesPerSecond: 10 * 1024 ** 3 }),
      128 * 1024,
    );
    assert.equal(
      messageBytes({ publishesPerSecond: 1000, bytesPerSecond: 5000, maxPayloadBytes: 1200 }),
      1200,
    );
    // Few publishes allowed: bigger messages, so bytes are not capped by the publish quota.
    assert.equal(messageBytes({ ...IOT, publishesPerSecond: 10 }), 79_744);
  });

  it('aligns sizes to just under whole 5,000-byte billing steps', () => {
    assert.equal(billingAligned(1), 4744);
    assert.equal(billingAligned(4744), 4744);
    assert.equal(billingAligned(4745), 9744);
    for (const size of [100, 8192, 50_000, 123_456]) {
      const aligned = billingAligned(size);
      assert.ok(aligned >= size, `${aligned} ≥ ${size}`);
      assert.equal((aligned + 256) % BILLING_STEP_BYTES, 0);
    }
  });

  it('drains at ≥ 95% of the byte quota with drain-size frames, never above it in any 1 s', () => {
    const clock = new FakeClock();
    const frame = messageBytes(IOT) + FRAME_OVERHEAD;
    const pacer = new QuotaPacer(IOT, frame, clock);
    const r = drive(pacer, clock, 60, () => frame - (clock.now() % 300)); // sizes vary a little
    const limits = windowLimits(IOT, frame);
    assert.ok(r.bytes <= limits.bytes, `worst second ${r.bytes} B > ${limits.bytes}`);
    assert.ok(r.bytes <= IOT.bytesPerSecond - frame, 'one frame stays free for jitter at the broker');
    assert.ok(r.count <= IOT.publishesPerSecond * (1 - WINDOW_MARGIN) - 1);
    assert.ok(r.rate >= 0.95 * IOT.bytesPerSecond, `rate ${Math.round(r.rate)} B/s`);
  });

  it('a sender that pauses 120 ms every 1.5 s (GC, a slow read) catches up: still ≥ 95%, never above', () => {
    const clock = new FakeClock();
    const frame = messageBytes(IOT) + FRAME_OVERHEAD;
    const pacer = new QuotaPacer(IOT, frame, clock);
    const r = drive(pacer, clock, 60, () => frame - (clock.now() % 300), 1500, 120);
    const limits = windowLimits(IOT, frame);
    assert.ok(r.bytes <= limits.bytes, `worst second ${r.bytes} B > ${limits.bytes}`);
    assert.ok(r.rate >= 0.95 * IOT.bytesPerSecond, `rate ${Math.round(r.rate)} B/s`);
  });

  it('adversarial: max-size frames (128 KiB) bigger than the bucket burst still never exceed the quota', () => {
    const clock = new FakeClock();
    const pacer = new QuotaPacer(IOT, messageBytes(IOT) + FRAME_OVERHEAD, clock);
    const r = drive(pacer, clock, 60, () => 128 * 1024 + FRAME_OVERHEAD);
    assert.ok(r.bytes <= IOT.bytesPerSecond * (1 - WINDOW_MARGIN), `worst second ${r.bytes} B`);
    assert.ok(r.rate > 0.5 * IOT.bytesPerSecond, 'big frames still go, three a second');
  });

  it('adversarial: a mix of max-size and tiny frames squeezing into every gap', () => {
    const clock = new FakeClock();
    const pacer = new QuotaPacer(IOT, messageBytes(IOT) + FRAME_OVERHEAD, clock);
    let i = 0;
    const r = drive(pacer, clock, 60, () => (i++ % 3 === 0 ? 128 * 1024 + FRAME_OVERHEAD : 50 + (i % 7)));
    assert.ok(r.bytes <= IOT.bytesPerSecond * (1 - WINDOW_MARGIN), `worst second ${r.bytes} B`);
    assert.ok(r.count <= IOT.publishesPerSecond, `worst second ${r.count} publishes`);
  });

  it('tiny frames: the publish quota decides', () => {
    const clock = new FakeClock();
    const pacer = new QuotaPacer(IOT, messageBytes(IOT) + FRAME_OVERHEAD, clock);
    const r = drive(pacer, clock, 30, () => 100);
    assert.ok(r.count <= 98, `worst second ${r.count} publishes`);
    assert.ok(r.count >= 90, `worst second ${r.count} publishes: the quota is used`);
  });
});
