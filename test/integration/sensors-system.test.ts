// Issue #3's acquisition through the product's own doors: `edgegw sensors read` (commissioning,
// child process) and the running daemon (readings at the broker, faults local, status counts).

import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config/load.js';
import { Daemon } from '../../src/daemon.js';
import { startModbusSimulator, type ModbusSim } from '../../src/demo/modbus-sim.js';
import { runCli } from '../helpers/cli.js';
import { decodeWire, makeSite, quietLog, waitFor, type TestSite, type WireMessage } from '../helpers/site.js';

const buses = (good: number, bad: number) => `  plc-good:
    tcp: { host: 127.0.0.1, port: ${good} }
    timeout: 200ms
    retries: 0
  plc-bad:
    tcp: { host: 127.0.0.1, port: ${bad} }
    timeout: 200ms
    retries: 0`;

const sensors = `  - { id: boiler-temp, bus: plc-good, table: holding, address: 0, type: float32, unit: degC, every: 100ms }
  - { id: pump-speed, bus: plc-good, table: holding, address: 2, type: uint16, unit: rpm, every: 100ms }
  - { id: alarm, bus: plc-good, table: coil, address: 0, every: 100ms }
  - { id: tank-level, bus: plc-bad, table: input, address: 7, type: int16, scale: 0.1, every: 100ms }
  - { id: tick, sim: { wave: counter }, every: 100ms }`;

describe('sensors through the CLI and the daemon (real Modbus TCP servers)', function () {
  this.timeout(60_000);
  let good: ModbusSim;
  let bad: ModbusSim;
  let site: TestSite;

  beforeEach(async () => {
    good = await startModbusSimulator({ host: '127.0.0.1', port: 0, demo: false });
    bad = await startModbusSimulator({ host: '127.0.0.1', port: 0, demo: false });
    good.set('holding', 0, [0x41ac, 0xcccd]); // float32 21.6, ABCD
    good.set('holding', 2, [1450]);
    good.set('coil', 0, [true]);
    bad.set('input', 7, [0xff9c]); // int16 -100 → -10 with scale 0.1
    site = await makeSite({ buses: buses(good.port, bad.port), sensors });
  });
  afterEach(async () => {
    await site.cleanup();
    await good.close();
    await bad.close();
  });

  it('sensors read prints a table with raw words, values, units and quality', async () => {
    const r = await runCli(['sensors', 'read', '-c', site.configFile]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0]!, /^ID\s+WHERE\s+RAW\s+VALUE\s+UNIT\s+QUALITY\s+ERROR$/);
    const row = (id: string) => lines.find((l) => l.startsWith(`${id} `)) ?? '';
    assert.match(row('boiler-temp'), /plc-good unit 1 holding 0.*0x41ac 0xcccd\s+21\.6\s+degC\s+good/);
    assert.match(row('pump-speed'), /1450\s+rpm\s+good/);
    assert.match(row('alarm'), /true\s+good/);
    assert.match(row('tank-level'), /-10\s+good/);
    assert.match(row('tick'), /\b0\s+good/);
  });

  it('sensors read --json for chosen ids; a failed device exits 1 with an error and no value', async () => {
    bad.setMode('silent');
    const r = await runCli(['sensors', 'read', '--json', '-c', site.configFile, 'tank-level', 'pump-speed']);
    assert.equal(r.code, 1);
    const rows = JSON.parse(r.stdout) as {
      id: string;
      value: unknown;
      quality: string;
      ts: number;
      error?: string;
    }[];
    assert.deepEqual(
      rows.map((x) => x.id),
      ['pump-speed', 'tank-level'],
      'configuration order, only the ids asked for',
    );
    assert.equal(rows[0]!.value, 1450);
    assert.equal(rows[0]!.quality, 'good');
    assert.equal(rows[0]!.error, undefined);
    assert.equal(rows[1]!.quality, 'bad');
    assert.match(rows[1]!.error ?? '', /no response within 200 ms/);
    assert.equal(rows[1]!.value, null, 'a failed read shows no value');
    assert.ok(typeof rows[1]!.ts === 'number' && rows[1]!.ts > 0);
  });

  it('sensors read with an unknown id is a usage error (exit 64) naming it', async () => {
    const r = await runCli(['sensors', 'read', '-c', site.configFile, 'no-such-sensor']);
    assert.equal(r.code, 64);
    assert.match(r.stderr, /no-such-sensor/);
  });

  it('the daemon delivers Modbus readings; a dead device goes bad alone and recovers', async () => {
    const messages: WireMessage[] = [];
    const unsubscribe = await site.broker.subscribe(site.topic, (p: Buffer) => {
      messages.push(JSON.parse(p.toString('utf8')) as WireMessage);
    });
    const daemon = new Daemon({ loaded: await loadConfig(site.configFile), log: quietLog() });
    const readings = () => messages.flatMap(decodeWire);
    const of = (id: string) => readings().filter((r) => r.sensor === id);
    await daemon.start();
    try {
      // Each bus connects in its own time: wait for a good reading of every sensor, not of one.
      const good = (id: string) => of(id).filter((r) => r.quality === 'good');
      const ids = ['boiler-temp', 'pump-speed', 'alarm', 'tank-level'];
      await waitFor(() => ids.every((id) => good(id).length > 0), 10_000, 'a good reading of each sensor');
      assert.equal(good('boiler-temp').at(-1)?.value, 21.6, 'float32 at sensor precision on the wire');
      assert.equal(good('pump-speed').at(-1)?.value, 1450);
      assert.equal(good('alarm').at(-1)?.value, true);
      assert.equal(good('tank-level').at(-1)?.value, -10);

      bad.setMode('silent');
      const mark = readings().length;
      await waitFor(
        () =>
          readings()
            .slice(mark)
            .filter((r) => r.sensor === 'tank-level' && r.quality === 'bad').length >= 8,
        15_000,
        'bad tank-level readings',
      );
      const badOnes = readings()
        .slice(mark)
        .filter((r) => r.sensor === 'tank-level' && r.quality === 'bad');
      const from = Math.min(...badOnes.map((r) => r.ts));
      const to = Math.max(...badOnes.map((r) => r.ts));
      // Let the other bus's readings of that time arrive: wait for one stamped after it.
      await waitFor(
        () => readings().some((r) => r.sensor === 'boiler-temp' && r.ts > to),
        15_000,
        'boiler-temp readings past the fault window',
      );
      const during = readings().slice(mark);
      const boiler = during.filter((r) => r.sensor === 'boiler-temp' && r.ts >= from && r.ts <= to);
      assert.ok(
        boiler.every((r) => r.quality === 'good'),
        'the other bus stays good',
      );
      // Every 100 ms over the fault window; allow for half of them (loaded CI machines).
      const expected = Math.floor((to - from) / 100);
      assert.ok(
        boiler.length >= expected / 2,
        `the other bus keeps its schedule: ${boiler.length} of ~${expected}`,
      );
      assert.ok(
        badOnes.every((r) => r.value === 0),
        'a bad reading never repeats the old value as if fresh',
      );
      const st = daemon.status.snapshot();
      const tank = st.sensors.find((s) => s.id === 'tank-level')!;
      assert.ok(tank.errors >= 1, 'errors counted for the failing sensor');
      assert.equal(st.sensors.find((s) => s.id === 'boiler-temp')!.errors, 0);

      bad.setMode('ok');
      const mark2 = readings().length;
      await waitFor(
        () =>
          readings()
            .slice(mark2)
            .some((r) => r.sensor === 'tank-level' && r.quality === 'good'),
        15_000,
        'tank-level to recover',
      );
    } finally {
      await daemon.stop();
      await unsubscribe();
    }
  });
});
