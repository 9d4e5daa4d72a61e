// Simulated sensors for the demo and tests: a sine between min and max, a counter (0, 1, 2, … one
// per poll) and uniform random values. Each sensor is its own group on its own fixed grid.

import { isSimSensor, type SimSensorConfig } from '../config/schema.js';
import type { Progress, Reading } from '../types.js';
import { FixedGrid } from './schedule.js';
import type { CommissionResult, SensorContext, SensorGroup } from './types.js';
import { BAD_VALUE, encodable, roundTo } from './value.js';

export interface SimOptions {
  /** Uniform [0, 1) source for `random`; default Math.random. */
  readonly random?: () => number;
}

export function createSimGroups(ctx: SensorContext, opts: SimOptions = {}): SensorGroup[] {
  return ctx.site.sensors.filter(isSimSensor).map((s) => new SimGroup(ctx, s, opts.random ?? Math.random));
}

/** The simulated value of `sensor` at time `ts`; `n` is the poll count (counter wave). */
export function simValue(sensor: SimSensorConfig, ts: number, n: number, random: () => number): number {
  const { wave, min, max, period } = sensor.sim;
  let v: number;
  switch (wave) {
    case 'sine': {
      // Phase from wall time, so every run and every gateway draws the same curve.
      const phase = (((ts % period) + period) % period) / period;
      v = min + ((max - min) * (1 + Math.sin(2 * Math.PI * phase))) / 2;
      break;
    }
    case 'counter':
      v = n;
      break;
    case 'random':
      v = min + (max - min) * random();
      break;
  }
  return sensor.decimals === undefined ? v : roundTo(v, sensor.decimals);
}

class SimGroup implements SensorGroup {
  readonly sensorIds: readonly string[];
  private readonly ctx: SensorContext;
  private readonly sensor: SimSensorConfig;
  private readonly random: () => number;
  private polls = 0;
  private grid: FixedGrid | null = null;

  constructor(ctx: SensorContext, sensor: SimSensorConfig, random: () => number) {
    this.ctx = ctx;
    this.sensor = sensor;
    this.random = random;
    this.sensorIds = [sensor.id];
  }

  start(): Promise<void> {
    if (this.grid !== null) return Promise.resolve();
    const id = this.sensor.id;
    this.grid = new FixedGrid({
      clock: this.ctx.clock,
      period: this.sensor.every,
      tick: (ts) => this.ctx.observer.reading(this.sample(ts)),
      onSkip: (n) => this.ctx.observer.overrun(id, n),
      onError: (err) => this.ctx.log.error({ sensor: id, err }, 'sim tick failed'),
    });
    this.grid.start();
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    const grid = this.grid;
    this.grid = null;
    await grid?.stop();
  }

  progress(): Progress[] {
    return this.grid === null ? [] : [this.grid.progress()];
  }

  readOnce(): Promise<CommissionResult[]> {
    const r = this.sample(this.ctx.clock.now());
    const row: CommissionResult = {
      id: r.sensor,
      where: `sim ${this.sensor.sim.wave}`,
      value: r.value,
      quality: r.quality,
      ts: r.ts,
    };
    if (this.sensor.unit !== undefined) row.unit = this.sensor.unit;
    return Promise.resolve([row]);
  }

  private sample(ts: number): Reading {
    const value = encodable(simValue(this.sensor, ts, this.polls++, this.random));
    if (value === null) {
      // e.g. min/max near ±1.8e308, whose span overflows: a bad reading, never a value JSON cannot hold.
      this.ctx.observer.error(this.sensor.id, 'EDGEGW_E_SENSOR_READ', 'sim value is not a finite number');
      return { sensor: this.sensor.id, ts, value: BAD_VALUE, quality: 'bad' };
    }
    return { sensor: this.sensor.id, ts, value, quality: 'good' };
  }
}
