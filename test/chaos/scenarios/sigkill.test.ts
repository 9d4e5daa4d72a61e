// SIGKILL at random moments: while the queue fills with the broker coming and going, and while a
// backlog drains with the quotas lifted (DESIGN.md §2.1–2.2: no committed record lost, seq never
// reused, at most one in-flight window sent twice per crash).

import { rand } from '../harness.js';
import { backlogAtLeast, backlogAtMost, delivers, randomMoment } from '../conditions.js';
import { scenario } from '../scenario.js';

const KILLS = 8;
// Small messages, so a backlog drains in many publishes that a kill can land between.
const LIFTED =
  'limits: { publishesPerSecond: 1000, bytesPerSecond: 8MiB, maxPayloadBytes: 2KiB, inflight: 16 }';

describe('chaos: SIGKILL', function () {
  this.timeout(0);

  scenario(
    'SIGKILL during fill, broker restarts between',
    'durability, seq never reused, no silent loss across crashes',
    {},
    async ({ site, note }) => {
      await site.broker.start();
      await site.daemon.start();
      let brokerRestarts = 0;
      for (let i = 0; i < KILLS; i++) {
        await randomMoment(150, 1200);
        await site.daemon.kill9();
        // Every other crash also takes the broker down for a while: records pile up on disk.
        const withBroker = i % 2 === 0;
        if (!withBroker) {
          await site.broker.kill();
          brokerRestarts++;
        }
        const exit = await site.daemon.start();
        if (exit !== null) throw new Error(`daemon refused to start after SIGKILL ${i + 1}: ${exit.stderr}`);
        if (!withBroker) {
          await randomMoment(100, 800);
          await site.broker.start();
        }
        await delivers(site, 3);
      }
      note('kills', KILLS);
      note('brokerRestarts', brokerRestarts);
    },
  );

  scenario(
    'SIGKILL during a quota-lifted drain',
    'at-least-once delivery of a backlog across crashes',
    { uplink: `  ${LIFTED}`, flush: '50ms', queue: '  maxRecordReadings: 30' },
    async ({ site, note }) => {
      await site.daemon.start();
      await backlogAtLeast(site, 100);
      await site.broker.start();
      for (let i = 0; i < KILLS; i++) {
        // The drain is under way once the broker acknowledged something on this connection.
        await delivers(site, 1);
        await randomMoment(0, 400);
        await site.daemon.kill9();
        if (rand(0, 2) === 0) await site.broker.restart();
        const exit = await site.daemon.start();
        if (exit !== null) throw new Error(`daemon refused to start after SIGKILL ${i + 1}: ${exit.stderr}`);
      }
      await backlogAtMost(site, 20);
      note('kills', KILLS);
    },
  );
});
