// A SensorContext for driver tests (gpio, sim): a recording observer and a logger whose lines the
// test can read back.

import { pino, type Logger } from 'pino';
import { Writable } from 'node:stream';
import type { SiteConfig, SensorConfig } from '../../src/config/schema.js';
import type { BoardProfile } from '../../src/config/profile.js';
import type { Clock, Reading, SensorObserver } from '../../src/types.js';
import type { SensorContext } from '../../src/sensors/types.js';

export class RecordingObserver implements SensorObserver {
  readonly readings: Reading[] = [];
  readonly errors: { sensor: string; code: string; message: string }[] = [];
  readonly overruns: { scope: string; skipped: number }[] = [];

  reading(r: Reading): void {
    this.readings.push(r);
  }
  error(sensor: string, code: string, message: string): void {
    this.errors.push({ sensor, code, message });
  }
  overrun(scope: string, skipped: number): void {
    this.overruns.push({ scope, skipped });
  }
  of(sensor: string): Reading[] {
    return this.readings.filter((r) => r.sensor === sensor);
  }
  values(sensor: string): (number | boolean)[] {
    return this.of(sensor).map((r) => r.value);
  }
}

export interface CapturedLog {
  log: Logger;
  lines: Record<string, unknown>[];
}

export function captureLog(): CapturedLog {
  const lines: Record<string, unknown>[] = [];
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n'))
        if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, dest), lines };
}

export function makeContext(
  sensors: unknown[],
  clock: Clock,
  opts: { profile?: BoardProfile | null; log?: Logger; observer?: SensorObserver } = {},
): { ctx: SensorContext; obs: RecordingObserver } {
  const obs = new RecordingObserver();
  const site = { gateway: { id: 'test-gw' }, sensors: sensors as SensorConfig[] } as unknown as SiteConfig;
  const ctx: SensorContext = {
    site,
    profile: opts.profile ?? null,
    observer: opts.observer ?? obs,
    clock,
    log: opts.log ?? pino({ level: 'silent' }),
  };
  return { ctx, obs };
}
