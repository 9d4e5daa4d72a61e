// Device Defender custom metrics (issue 11) over a real uplink connection to the real TLS broker,
// answered by the in-repo Defender simulator: one report per interval (the fake clock drives the
// reporter's timer; the schema keeps the interval at 5 minutes or more), in Defender's document
// shape with growing report ids, and none while offline.

import assert from 'node:assert/strict';
import pino from 'pino';
import { createDemoPki, type DemoPki } from '../../src/demo/pki.js';
import { startTlsBroker, type TlsBroker } from '../../src/demo/broker.js';
import { DefenderService } from '../../src/demo/iotcore-sim/defender.js';
import { DefenderReporter } from '../../src/fleet/defender.js';
import type { Uplink } from '../../src/uplink/uplink.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { waitFor } from '../helpers/site.js';
import { MemorySource } from '../unit/uplink/memory-source.js';
import { GW, makeUplink } from './uplink-support.js';

describe('Device Defender custom metrics', function () {
  this.timeout(30_000);
  let pki: DemoPki;
  let broker: TlsBroker;
  let uplink: Uplink;
  let service: DefenderService;

  before(() => {
    pki = createDemoPki(GW);
  });
  beforeEach(async () => {
    broker = await startTlsBroker({ pki, iotcore: true });
    service = new DefenderService(broker.aedes);
    uplink = makeUplink(broker, pki, new MemorySource());
  });
  afterEach(async () => {
    await uplink.stop(0);
    service.close();
    await broker.close();
  });

  it('sends one accepted report per interval, with the figures as number metrics; none while offline', async () => {
    const clock = new FakeClock();
    let reconnects = 0;
    const reporter = new DefenderReporter({
      control: uplink.control,
      thing: GW,
      intervalMs: 300_000,
      clock,
      log: pino({ level: 'silent' }),
      figures: () => ({
        backlogReadings: 1200,
        backlogAgeS: 42.5,
        droppedReadings: 3,
        quarantinedRecords: 1,
        uplinkReconnects: reconnects,
      }),
    });
    await uplink.start();
    await waitFor(() => uplink.control.connected, 10_000, 'connected');
    await reporter.start();
    clock.advance(299_999);
    assert.equal(service.accepted.length, 0, 'nothing before the interval');
    clock.advance(1);
    await waitFor(() => service.accepted.length === 1, 5000, 'the first report');
    const r = service.accepted[0]!;
    assert.deepEqual(r.customMetrics, {
      edgegw_backlog_readings: [{ number: 1200 }],
      edgegw_backlog_age_s: [{ number: 42.5 }],
      edgegw_dropped_readings: [{ number: 3 }],
      edgegw_quarantined_records: [{ number: 1 }],
      edgegw_uplink_reconnects: [{ number: 0 }],
    });
    assert.equal(r.reportId, Math.floor(clock.now() / 1000));

    reconnects = 2;
    clock.advance(300_000);
    await waitFor(() => service.accepted.length === 2, 5000, 'the second report');
    await waitFor(() => reporter.status().accepted === 2, 5000, 'the second answer');
    assert.ok(service.accepted[1]!.reportId > r.reportId);
    assert.deepEqual(service.accepted[1]!.customMetrics.edgegw_uplink_reconnects, [{ number: 2 }]);

    // Offline: the report due is skipped, not queued.
    await uplink.stop(0);
    clock.advance(300_000);
    await reporter.stop();
    assert.equal(service.accepted.length, 2);
    assert.deepEqual(service.rejected, []);
    assert.deepEqual(reporter.status(), { accepted: 2, rejected: 0, lastRejection: null });
  });

  it("logs and counts a report Defender rejects, with AWS's code and message", async () => {
    const lines: { code?: string; awsCode?: string; msg: string }[] = [];
    const log = pino(
      { level: 'warn' },
      { write: (l: string) => lines.push(JSON.parse(l) as (typeof lines)[0]) },
    );
    const figures = () => ({
      backlogReadings: 0,
      backlogAgeS: null,
      droppedReadings: 0,
      quarantinedRecords: 0,
      uplinkReconnects: 0,
    });
    const make = (clock: FakeClock) =>
      new DefenderReporter({ control: uplink.control, thing: GW, intervalMs: 300_000, clock, log, figures });
    await uplink.start();
    await waitFor(() => uplink.control.connected, 10_000, 'connected');
    const before = new FakeClock();
    const first = make(before);
    await first.start();
    before.advance(300_000);
    await waitFor(() => first.status().accepted === 1, 5000, 'the first report accepted');
    await first.stop();
    // A restart after the clock stepped back an hour: the report id is below Defender's last one.
    const after = new FakeClock(before.now() - 3_600_000);
    const second = make(after);
    await second.start();
    after.advance(300_000);
    await waitFor(() => second.status().rejected === 1, 5000, 'the rejection counted');
    await second.stop();
    const s = second.status();
    assert.equal(s.accepted, 0);
    assert.equal(s.lastRejection?.code, 'InvalidPayload');
    assert.match(s.lastRejection?.message ?? '', /report_id must grow/);
    const warned = lines.find((l) => l.code === 'EDGEGW_E_FLEET_DEFENDER');
    assert.ok(warned, 'a warning names the rejection');
    assert.equal(warned.awsCode, 'InvalidPayload');
    assert.match(warned.msg, /rejected report \d+: InvalidPayload: report_id must grow/);
  });
});
