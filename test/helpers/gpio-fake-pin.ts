// An in-memory PinPort for the fake-clock GPIO tests: the test sets the raw level and the pin
// reports each change like an interrupt would. The real onoff port is tested on a fake sysfs tree
// (test/integration/gpio-sysfs.test.ts).

import type { Bit, PinPort, PinPortFactory, PinPortSpec } from '../../src/sensors/gpio/index.js';

export class FakePin implements PinPort {
  level: Bit;
  closed = false;
  readonly spec: PinPortSpec;
  private cb: ((v: Bit) => void) | null = null;

  constructor(spec: PinPortSpec, level: Bit) {
    this.spec = spec;
    this.level = level;
  }

  read(): Bit {
    return this.level;
  }
  watch(cb: (v: Bit) => void): void {
    this.cb = cb;
  }
  unwatch(): void {
    this.cb = null;
  }
  close(): void {
    this.unwatch();
    this.closed = true;
  }
  get watched(): boolean {
    return this.cb !== null;
  }

  /** The wire changes level; reported like an interrupt when it is watched. */
  set(v: Bit): void {
    if (v === this.level) return;
    this.level = v;
    this.cb?.(v);
  }
}

export interface FakePins {
  factory: PinPortFactory;
  /** Pins opened so far, by sysfs number (the latest open). */
  pins: Map<number, FakePin>;
  initial: Map<number, Bit>;
}

export function fakePins(initial: Record<number, Bit> = {}): FakePins {
  const pins = new Map<number, FakePin>();
  const init = new Map(Object.entries(initial).map(([k, v]) => [Number(k), v]));
  return {
    pins,
    initial: init,
    factory: (spec) => {
      const pin = new FakePin(spec, init.get(spec.gpio) ?? 0);
      pins.set(spec.gpio, pin);
      return Promise.resolve(pin);
    },
  };
}

/** A factory failing as the kernel would, with an errno code. */
export function failingPins(code: string): PinPortFactory {
  return () => {
    const err = new Error(`${code}: simulated`) as NodeJS.ErrnoException;
    err.code = code;
    return Promise.reject(err);
  };
}
