// One GPIO input sensor. `level` mode emits a boolean reading per accepted edge (plus its level at
// start, and a periodic re-read when `every` is set); `counter` mode counts accepted edges and
// emits the count of each `every` interval (default 1 s) as a number.

import { existsSync } from 'node:fs';
import type { GpioSensorConfig } from '../../config/schema.js';
import { EdgegwError } from '../../errors.js';
import type { Progress, Reading } from '../../types.js';
import { FixedGrid } from '../schedule.js';
import type { CommissionResult, SensorContext, SensorGroup } from '../types.js';
import { DebouncedInput } from './debounce.js';
import { gpioMissingError, gpioOpenError, pinWhere, type PinLabel } from './errors.js';
import type { Bit, PinPort, PinPortFactory } from './pin-port.js';
import type { BoardProfile } from '../../config/profile.js';

export const DEFAULT_COUNTER_EVERY_MS = 1000;

/** Pin name or number → sysfs GPIO number (src/config/profile.ts resolvePin by default). */
export type ResolvePin = (profile: BoardProfile | null, pin: string | number, sysfsRoot?: string) => number;

export interface GpioGroupDeps {
  readonly sysfsRoot: string;
  readonly pinPort: PinPortFactory;
  readonly resolvePin: ResolvePin;
  readonly pollMs: number;
}

interface Running {
  readonly port: PinPort;
  readonly input: DebouncedInput;
  readonly grid: FixedGrid | null;
  readonly where: string;
}

export class GpioGroup implements SensorGroup {
  readonly sensorIds: readonly string[];
  private readonly ctx: SensorContext;
  private readonly sensor: GpioSensorConfig;
  private readonly deps: GpioGroupDeps;
  private running: Running | null = null;
  private count = 0;

  constructor(ctx: SensorContext, sensor: GpioSensorConfig, deps: GpioGroupDeps) {
    this.ctx = ctx;
    this.sensor = sensor;
    this.deps = deps;
    this.sensorIds = [sensor.id];
  }

  async start(): Promise<void> {
    if (this.running !== null) return;
    const { sensor, ctx } = this;
    const { gpio: cfg } = sensor;
    const watching = cfg.edge !== 'none';
    if (cfg.mode === 'counter' && !watching) {
      ctx.log.warn(
        { sensor: sensor.id },
        'GPIO counter with edge none counts nothing; set edge rising, falling or both',
      );
    }
    const { port, where, label } = await this.open(watching);
    let initial: Bit;
    try {
      initial = port.read();
    } catch (err) {
      try {
        port.close();
      } catch {
        // the open error below is the one to report
      }
      throw gpioOpenError(label, err);
    }
    const input = new DebouncedInput({
      clock: ctx.clock,
      debounceMs: cfg.debounce,
      activeLow: cfg.activeLow,
      edge: cfg.edge,
      initialRaw: initial,
      onEdge: (level, ts) => this.onEdge(level, ts),
      readRaw: () => this.safeRead(port, where),
    });
    const grid = this.makeGrid(port, input, where);
    this.running = { port, input, grid, where };
    this.count = 0;
    if (cfg.mode === 'level') this.emit(input.level, ctx.clock.now());
    if (watching) port.watch((v) => input.raw(v));
    grid?.start();
  }

  progress(): Progress[] {
    const grid = this.running?.grid;
    return grid === null || grid === undefined ? [] : [grid.progress()];
  }

  async stop(): Promise<void> {
    const r = this.running;
    if (r === null) return;
    this.running = null;
    await r.grid?.stop();
    r.port.unwatch();
    r.input.dispose();
    // Pulses counted since the last report are emitted rather than lost at a clean stop.
    if (this.sensor.gpio.mode === 'counter' && this.count > 0) this.emit(this.count, this.ctx.clock.now());
    r.port.close();
  }

  async readOnce(): Promise<CommissionResult[]> {
    const { sensor, ctx } = this;
    const mode = sensor.gpio.mode === 'counter' ? ', counter: level shown' : '';
    const row = (where: string, value: boolean | null, error?: string): CommissionResult[] => {
      const r: CommissionResult = {
        id: sensor.id,
        where: `${where}${mode}`,
        value,
        quality: 'good',
        ts: ctx.clock.now(),
      };
      if (sensor.unit !== undefined) r.unit = sensor.unit;
      if (error !== undefined) Object.assign(r, { error, quality: 'bad' });
      return [r];
    };
    if (this.running !== null) return row(this.running.where, this.running.input.level);
    let opened: { port: PinPort; where: string };
    try {
      opened = await this.open(false);
    } catch (err) {
      return row(`GPIO ${String(sensor.gpio.pin)}`, null, (err as Error).message);
    }
    try {
      const raw = opened.port.read();
      return row(opened.where, (raw === 1) !== sensor.gpio.activeLow);
    } catch (err) {
      return row(opened.where, null, `read failed: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    } finally {
      opened.port.close();
    }
  }

  private async open(interrupts: boolean): Promise<{ port: PinPort; where: string; label: PinLabel }> {
    const { sensor, ctx, deps } = this;
    const pin = sensor.gpio.pin;
    let gpio: number;
    try {
      gpio = deps.resolvePin(ctx.profile, pin, deps.sysfsRoot);
    } catch (err) {
      const code = err instanceof EdgegwError ? err.code : 'EDGEGW_E_GPIO';
      const exit = err instanceof EdgegwError ? err.exitCode : undefined;
      throw new EdgegwError(code, `sensor ${sensor.id}: ${(err as Error).message}`, exit, { cause: err });
    }
    const label = { sensor: sensor.id, pin, gpio };
    if (!existsSync(deps.sysfsRoot)) throw gpioMissingError(label, deps.sysfsRoot);
    try {
      const port = await deps.pinPort({
        gpio,
        interrupts,
        clock: ctx.clock,
        log: ctx.log,
        pollMs: deps.pollMs,
        onError: (err) => this.reportError(pinWhere(label), err),
      });
      return { port, where: pinWhere(label), label };
    } catch (err) {
      throw gpioOpenError(label, err);
    }
  }

  private makeGrid(port: PinPort, input: DebouncedInput, where: string): FixedGrid | null {
    const { sensor, ctx } = this;
    const clock = ctx.clock;
    const onSkip = (n: number) => ctx.observer.overrun(sensor.id, n);
    if (sensor.gpio.mode === 'counter') {
      const period = sensor.every ?? DEFAULT_COUNTER_EVERY_MS;
      return new FixedGrid({
        clock,
        period,
        t0: clock.monotonic() + period,
        onSkip,
        tick: (ts) => {
          const n = this.count;
          this.count = 0;
          this.emit(n, ts);
        },
      });
    }
    if (sensor.every === undefined) return null;
    return new FixedGrid({
      clock,
      period: sensor.every,
      t0: clock.monotonic() + sensor.every,
      onSkip,
      tick: (ts) => {
        const v = this.safeRead(port, where);
        if (v === null) return;
        input.raw(v);
        this.emit(input.level, ts);
      },
    });
  }

  private onEdge(level: boolean, ts: number): void {
    if (this.sensor.gpio.mode === 'counter') this.count++;
    else this.emit(level, ts);
  }

  private emit(value: number | boolean, ts: number): void {
    const r: Reading = { sensor: this.sensor.id, ts, value, quality: 'good' };
    this.ctx.observer.reading(r);
  }

  private safeRead(port: PinPort, where: string): Bit | null {
    try {
      return port.read();
    } catch (err) {
      this.reportError(where, err as Error);
      return null;
    }
  }

  private reportError(where: string, err: Error): void {
    const code = (err as NodeJS.ErrnoException).code ?? err.name;
    this.ctx.observer.error(this.sensor.id, 'EDGEGW_E_GPIO', `${where}: read failed (${code})`);
  }
}
