import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { SiteConfig } from '../../../src/config/schema.js';
import { SensorSet } from '../../../src/sensors/sensor-set.js';
import type { SensorContext, SensorGroup } from '../../../src/sensors/types.js';
import { systemClock, type Progress, type SensorObserver } from '../../../src/types.js';

/** A group per bus (modbus) or per sensor (sim), as the real drivers make them; records its life. */
class FakeGroup implements SensorGroup {
  static events: string[] = [];
  constructor(readonly sensorIds: string[]) {}
  start(): Promise<void> {
    FakeGroup.events.push(`start ${this.sensorIds.join(',')}`);
    return Promise.resolve();
  }
  stop(): Promise<void> {
    FakeGroup.events.push(`stop ${this.sensorIds.join(',')}`);
    return Promise.resolve();
  }
  readOnce(): Promise<never[]> {
    return Promise.resolve([]);
  }
  progress(): Progress[] {
    return [];
  }
}

function create(ctx: SensorContext): SensorGroup[] {
  const byBus = new Map<string, string[]>();
  const groups: SensorGroup[] = [];
  for (const s of ctx.site.sensors) {
    if ('bus' in s) byBus.set(s.bus, [...(byBus.get(s.bus) ?? []), s.id]);
    else groups.push(new FakeGroup([s.id]));
  }
  return [...[...byBus.values()].map((ids) => new FakeGroup(ids)), ...groups];
}

function site(buses: Record<string, unknown>, sensors: unknown[]): SiteConfig {
  return { buses, sensors } as unknown as SiteConfig;
}

const observer: SensorObserver = {
  reading: () => undefined,
  error: () => undefined,
  overrun: () => undefined,
};

describe('sensors/SensorSet (reload)', () => {
  const plc = { tcp: { host: '10.0.0.5', port: 502 }, timeout: 1000 };
  const rtu = { rtu: { port: '/dev/ttyS0' }, timeout: 500 };
  const a = { id: 'a', bus: 'plc', address: 0 };
  const b = { id: 'b', bus: 'rs485', address: 1 };
  const sim = { id: 's', sim: { wave: 'sine' } };

  beforeEach(() => (FakeGroup.events = []));

  it('restarts only the groups whose sensors or bus changed; the rest keep running', async () => {
    const set = new SensorSet(
      { observer, clock: systemClock, log: pino({ level: 'silent' }), create },
      site({ plc, rs485: rtu }, [a, b, sim]),
      null,
    );
    await set.start();
    assert.deepEqual(FakeGroup.events, ['start a', 'start b', 'start s']);
    FakeGroup.events = [];
    const settled: string[] = [];
    const c = { id: 'c', bus: 'plc', address: 2 };
    const change = await set.apply(
      site({ plc, rs485: { ...rtu, timeout: 700 } }, [a, c, sim]).valueOf() as SiteConfig,
      null,
      () => {
        settled.push(`after ${FakeGroup.events.length} events`);
        return Promise.resolve();
      },
    );
    // plc gained c (its group restarts), rs485 changed and lost b (its group stops), s untouched.
    assert.deepEqual(FakeGroup.events, ['stop a', 'stop b', 'start a,c']);
    assert.deepEqual(settled, ['after 2 events'], 'readings are settled after the stops, before the starts');
    assert.deepEqual(change, { stopped: ['a', 'b'], started: ['a', 'c'], failed: [] });
    assert.deepEqual(
      set
        .list()
        .map((g) => g.sensorIds.join(','))
        .sort(),
      ['a,c', 's'],
    );
    FakeGroup.events = [];
    const none = await set.apply(site({ plc, rs485: rtu }, [a, c, sim]), null, () => Promise.resolve());
    assert.deepEqual(
      none,
      { stopped: [], started: [], failed: [] },
      'an unused bus changing restarts nothing',
    );
    assert.deepEqual(FakeGroup.events, []);
    await set.stop();
    assert.deepEqual(FakeGroup.events.sort(), ['stop a,c', 'stop s']);
  });

  it('a new board profile restarts every group (pin and port names may mean other devices)', async () => {
    const set = new SensorSet(
      { observer, clock: systemClock, log: pino({ level: 'silent' }), create },
      site({ plc }, [a, sim]),
      null,
    );
    await set.start();
    FakeGroup.events = [];
    const change = await set.apply(site({ plc }, [a, sim]), { name: 'pi' } as never, () => Promise.resolve());
    assert.deepEqual(change.started.sort(), ['a', 's']);
    await set.stop();
  });
});
