// The lines `edgegw status` adds for operations: rates against the limits, the drain estimate,
// the certificate's days left, and `--watch` frames.

import assert from 'node:assert/strict';
import { formatStatus, frameLines, watchFrame } from '../../../src/status/format.js';
import type { StatusSnapshot } from '../../../src/status/model.js';
import { fixture, T0 } from './support.js';

const DAY = 86_400_000;

function snapshot(over: (s: StatusSnapshot) => void = () => undefined): StatusSnapshot {
  const s = fixture().model.snapshot();
  s.uplink.rates = {
    windowS: 10,
    publishesPerSecond: 42.5,
    bytesPerSecond: 307_200,
    limits: { publishesPerSecond: 100, bytesPerSecond: 524_288 },
  };
  s.uplink.reconnects = 3;
  s.queue.readings = 12_000;
  s.queue.rates = { committedPerSecond: 20, deliveredPerSecond: 120 };
  s.queue.drainS = 120;
  s.certificate = {
    subject: 'CN=gw',
    notBefore: T0 - 300 * DAY,
    notAfter: Date.UTC(2027, 0, 15),
    daysLeft: 200,
    state: 'valid',
    warning: false,
  };
  over(s);
  return s;
}

describe('formatStatus: rates, drain, certificate', () => {
  it('shows publish and byte rates against the limits, and reconnects', () => {
    const text = formatStatus(snapshot(), T0);
    assert.match(text, /^rates +42\.5 of 100 publishes\/s · 300 KiB\/s of 512 KiB\/s \(last 10 s\)$/m);
    assert.match(text, /^uplink .* · in flight 3 · 3 reconnects$/m);
  });

  it('shows the backlog in and out rates and when it will be empty', () => {
    const text = formatStatus(snapshot(), T0);
    assert.match(text, /^drain +in 20 · out 120 readings\/s · empty in about 2m00s$/m);
    const growing = formatStatus(
      snapshot((s) => {
        s.queue.rates = { committedPerSecond: 20, deliveredPerSecond: 0 };
        s.queue.drainS = null;
      }),
      T0,
    );
    assert.match(growing, /^drain +in 20 · out 0 readings\/s · not draining$/m);
    const empty = formatStatus(
      snapshot((s) => (s.queue.readings = 0)),
      T0,
    );
    assert.doesNotMatch(empty, /^drain/m);
  });

  it('shows the certificate days left, and warns under 30 days or when not valid', () => {
    const ok = formatStatus(snapshot(), T0);
    assert.match(ok, /^cert +device certificate valid, 200 days left \(until 2027-01-15\)$/m);
    assert.doesNotMatch(ok, /warning/);
    const soon = formatStatus(
      snapshot((s) => Object.assign(s.certificate!, { daysLeft: 12, warning: true })),
      T0,
    );
    assert.match(soon, /^warning +device certificate expires in 12 days \(2027-01-15\): renew it$/m);
    const early = formatStatus(
      snapshot((s) => Object.assign(s.certificate!, { state: 'not-yet-valid', warning: true })),
      T0,
    );
    assert.match(early, /^warning +device certificate is valid only from .*: is the clock right\?$/m);
    const gone = formatStatus(
      snapshot((s) => Object.assign(s.certificate!, { state: 'expired', daysLeft: -2, warning: true })),
      T0,
    );
    assert.match(gone, /^warning +device certificate expired on 2027-01-15/m);
  });

  it('leaves out what an older daemon does not send', () => {
    const s = fixture().model.snapshot() as unknown as Record<string, unknown>;
    delete s.certificate;
    const u = s.uplink as Record<string, unknown>;
    delete u.rates;
    delete u.reconnects;
    const q = s.queue as Record<string, unknown>;
    delete q.rates;
    delete q.ageS;
    const text = formatStatus(s as unknown as StatusSnapshot, T0);
    assert.doesNotMatch(text, /^(rates|drain|cert) /m);
    assert.match(text, /oldest 5\.0s old/);
  });
});

describe('watchFrame', () => {
  const a = 'line one\nline two\n\nSENSOR\n';
  it('redraws in place on a terminal: cursor up over the last frame, clear below', () => {
    assert.equal(watchFrame(a, 0, { isTTY: true, columns: 80 }), a);
    assert.equal(frameLines(a), 4);
    assert.equal(watchFrame('x\n', 4, { isTTY: true, columns: 80 }), '\x1b[4A\r\x1b[Jx\n');
  });

  it('cuts lines to the terminal width so the line count stays true', () => {
    assert.equal(watchFrame('abcdefgh\nab\n', 0, { isTTY: true, columns: 4 }), 'abcd\nab\n');
  });

  it('writes plain blocks, without escape codes, elsewhere', () => {
    const out = watchFrame(a, 0, { isTTY: false }) + watchFrame(a, frameLines(a), { isTTY: false });
    assert.equal(out, `${a}\n${a}`);
    assert.ok(!out.includes('\x1b'));
  });

  it("shows Device Defender's answers, with the last rejection's code and message", () => {
    const text = formatStatus(
      snapshot((s) => {
        s.fleet = {
          shadow: null,
          jobs: null,
          defender: {
            accepted: 12,
            rejected: 1,
            lastRejection: {
              reportId: 1_764_380_000,
              code: 'InvalidPayload',
              message: 'report_id must grow',
            },
          },
        };
      }),
      T0,
    );
    assert.match(
      text,
      /^defender 12 reports accepted · 1 rejected \(last: InvalidPayload: report_id must grow\)$/m,
    );
    assert.doesNotMatch(formatStatus(snapshot(), T0), /^defender/m);
  });
});
