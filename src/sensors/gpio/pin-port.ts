// The driver seam between the GPIO sensor logic and the pin. The real port is onoff's Gpio on
// sysfs. Edge filtering, debounce and activeLow are done above this seam, on the injected clock,
// so the port only reports raw level changes and stays trivially small.

import type { Logger } from 'pino';
import type { Clock } from '../../types.js';

export type Bit = 0 | 1;

export interface PinPort {
  /** The raw level now (no activeLow inversion). */
  read(): Bit;
  /** Calls `cb` with the raw level after each change the hardware reports. */
  watch(cb: (value: Bit) => void): void;
  unwatch(): void;
  /** Releases the pin (unexport). */
  close(): void;
}

export interface PinPortSpec {
  /** sysfs GPIO number. */
  readonly gpio: number;
  /** Whether changes will be watched (interrupts on both edges) or only read. */
  readonly interrupts: boolean;
  readonly clock: Clock;
  readonly log: Logger;
  /** Polling period of the fallback used where epoll refuses the value file (ms). */
  readonly pollMs: number;
  /** A failure while watching (the sensor logic reports it per sensor). */
  readonly onError: (err: Error) => void;
}

export type PinPortFactory = (spec: PinPortSpec) => Promise<PinPort>;

/** Opens the pin with onoff (loaded on first use: it pulls in the epoll native addon). */
export const onoffPinPort: PinPortFactory = async (spec) => {
  const { Gpio } = await import('onoff');
  // Always both edges: debounce needs to see a change go back, and rising/falling are decided on
  // the logical (activeLow-applied) level above. activeLow is done in software too, so the kernel
  // flag is reset to 0 here and the raw level reaches the logic.
  const gpio = new Gpio(spec.gpio, 'in', spec.interrupts ? 'both' : 'none', { activeLow: false });
  return new OnoffPinPort(gpio, spec);
};

type OnoffGpio = InstanceType<typeof import('onoff').Gpio>;
type OnoffCallback = (err: Error | null | undefined, value: Bit) => void;

class OnoffPinPort implements PinPort {
  private readonly gpio: OnoffGpio;
  private readonly spec: PinPortSpec;
  private listener: OnoffCallback | null = null;
  private pollTimer: unknown = undefined;
  private polling = false;

  constructor(gpio: OnoffGpio, spec: PinPortSpec) {
    this.gpio = gpio;
    this.spec = spec;
  }

  read(): Bit {
    return this.gpio.readSync();
  }

  watch(cb: (value: Bit) => void): void {
    this.unwatch();
    const listener: OnoffCallback = (err, value) => {
      if (err) this.spec.onError(err);
      else cb(value);
    };
    try {
      this.gpio.watch(listener);
      this.listener = listener;
    } catch (err) {
      // epoll refuses value files that are not real sysfs GPIO attributes (EPERM): a fake sysfs
      // tree in tests, or a driver without interrupt support. onoff has already queued the
      // listener; unwatch() drops it, then throws from the same epoll call, which is expected.
      try {
        this.gpio.unwatch(listener);
      } catch {
        // see above
      }
      this.spec.log.warn(
        { gpio: this.spec.gpio, code: (err as NodeJS.ErrnoException).code, pollMs: this.spec.pollMs },
        'GPIO interrupts unavailable on this pin; polling its value instead',
      );
      this.startPolling(cb);
    }
  }

  unwatch(): void {
    if (this.listener !== null) {
      const listener = this.listener;
      this.listener = null;
      this.gpio.unwatch(listener);
    }
    this.polling = false;
    if (this.pollTimer !== undefined) {
      this.spec.clock.clearTimeout(this.pollTimer);
      this.pollTimer = undefined;
    }
  }

  close(): void {
    this.unwatch();
    this.gpio.unexport();
  }

  private startPolling(cb: (value: Bit) => void): void {
    this.polling = true;
    let last = this.read();
    const poll = () => {
      this.pollTimer = undefined;
      if (!this.polling) return;
      try {
        const v = this.read();
        if (v !== last) {
          last = v;
          cb(v);
        }
      } catch (err) {
        this.spec.onError(err as Error);
      }
      if (this.polling) this.pollTimer = this.spec.clock.setTimeout(poll, this.spec.pollMs);
    };
    this.pollTimer = this.spec.clock.setTimeout(poll, this.spec.pollMs);
  }
}
