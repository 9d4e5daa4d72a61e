// Sensor-side faults: a Modbus TCP device (a real modbus-serial ServerTCP, src/demo/modbus-sim.ts)
// that dies, answers garbage (exceptions, NaN and Infinity in its registers, silence) and comes
// back on the same port; and a burst of 100× the normal reading rate. Other sensors' readings must
// never be lost with a bad one (issue 6 break 11), and the device's readings resume.

import { readFile, writeFile } from 'node:fs/promises';
import { waitFor } from '../../helpers/site.js';
import { startModbusSimulator, type ModbusSim } from '../../../src/demo/modbus-sim.js';
import { freePort, type ChaosSite } from '../harness.js';
import { backlogAtMost, delivers, randomMoment } from '../conditions.js';
import { scenario } from '../scenario.js';

const NAN = [0x7fc0, 0x0000];
const INFINITY = [0x7f80, 0x0000];
const GOOD = [0x41ac, 0xcccd]; // 21.6 as float32

async function sensorGood(site: ChaosSite, id: string, ms = 15_000): Promise<void> {
  let since = Date.now();
  await waitFor(
    async () => {
      const s = (await site.daemon.status())?.sensors.find((x) => x.id === id);
      return s !== undefined && s.quality === 'good' && s.ts > since;
    },
    ms,
    `fresh good readings from ${id}`,
  );
  since = Date.now();
}

describe('chaos: sensor faults', function () {
  this.timeout(0);

  let port = 0;
  scenario(
    'a Modbus device dies, answers garbage and returns',
    'a bad reading is a bad reading, never a failed commit; polling resumes',
    () => {
      return {
        buses: `  plc-1: { tcp: { host: 127.0.0.1, port: ${port} }, timeout: 200ms, retries: 0 }`,
        sensors: `  - { id: plc-temp, bus: plc-1, unitId: 1, table: holding, address: 0, type: float32, every: 100ms }
  - { id: counter-1, sim: { wave: counter }, every: 50ms }`,
      };
    },
    async ({ site }) => {
      let sim: ModbusSim | null = await startModbusSimulator({ port, demo: false });
      try {
        sim.set('holding', 0, GOOD);
        await site.broker.start();
        await site.daemon.start();
        await sensorGood(site, 'plc-temp');
        await delivers(site, 3);

        await sim.close();
        sim = null;
        await randomMoment(300, 1500);
        await delivers(site, 3); // the other sensor's records keep flowing while the device is gone
        sim = await startModbusSimulator({ port, demo: false });
        for (const garbage of [NAN, INFINITY]) {
          sim.set('holding', 0, garbage);
          await randomMoment(300, 800);
          await delivers(site, 3);
        }
        sim.setMode('exception2');
        await randomMoment(300, 800);
        sim.setMode('silent');
        await randomMoment(300, 800);
        sim.setMode('close');
        await randomMoment(300, 800);
        sim.setMode('ok');
        sim.set('holding', 0, GOOD);
        await sensorGood(site, 'plc-temp');
        await delivers(site, 5);
        await backlogAtMost(site, 10);
      } finally {
        await sim?.close();
      }
    },
  );
  before(async () => {
    port = await freePort();
  });

  scenario(
    'a burst of 100× the normal reading rate',
    'a burst is committed and delivered whole, within bounded resources',
    {
      sensors:
        '  - { id: burst-1, sim: { wave: counter }, every: 1s }\n  - { id: burst-2, sim: { wave: random, min: 0, max: 9 }, every: 1s }',
    },
    async ({ site, note }) => {
      // No sensor can be driven faster from outside the daemon: the burst is the same sensors at
      // 100× the rate (1 s → 10 ms) between two clean restarts.
      await site.broker.start();
      await site.daemon.start();
      await delivers(site, 3);
      await site.daemon.stop();
      const normal = await readFile(site.configFile, 'utf8');
      await writeFile(site.configFile, normal.replace(/every: 1s/g, 'every: 10ms'));
      await site.daemon.start();
      await randomMoment(3000, 5000);
      const s = await site.daemon.status();
      note('burstReadings', s?.counters.readings ?? -1);
      await site.daemon.stop();
      await writeFile(site.configFile, normal);
      await site.daemon.start();
      await delivers(site, 3);
      await backlogAtMost(site, 10);
    },
  );
});
