// One owner per bus. Every request on a bus goes through this queue, one at a time (RS-485 is
// half-duplex, and many TCP gateways also serve one request at a time), with the configured
// silence between frames. It retries per the bus settings, backs off a unit (device) that stopped
// answering so it cannot starve the others on its line, and reopens a dropped connection or a
// vanished serial port by itself, with backoff.

import type { Logger } from 'pino';
import type { BusConfig } from '../../config/schema.js';
import type { Clock } from '../../types.js';
import { ExponentialDelay } from './delay.js';
import { ModbusLink, ReadFailure, classify, describeEndpoint } from './link.js';
import { describeRange, type ReadBlock } from './plan.js';

export interface BusTuning {
  /** First pause for a unit that stopped answering; doubles per failed probe up to the max. */
  readonly unitBackoffMin: number;
  readonly unitBackoffMax: number;
  /** Pauses between attempts to reopen a dropped connection or a vanished serial port. */
  readonly reconnectMin: number;
  readonly reconnectMax: number;
}

export const DEFAULT_TUNING: BusTuning = {
  unitBackoffMin: 1000,
  unitBackoffMax: 30_000,
  reconnectMin: 500,
  reconnectMax: 30_000,
};

export type BlockOutcome =
  | { readonly ok: true; readonly data: number[] | boolean[]; readonly ts: number }
  | { readonly ok: false; readonly failure: ReadFailure; readonly ts: number };

/** Exceptions that say the request itself is wrong: the same request will fail again. */
const PERMANENT_EXCEPTIONS = new Set([1, 2, 3]);

export class ModbusBus {
  readonly name: string;
  private readonly config: BusConfig;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly tuning: BusTuning;
  private readonly link: ModbusLink;
  private tail: Promise<unknown> = Promise.resolve();
  private lastFrameEnd = -Infinity;
  private readonly units = new Map<number, { delay: ExponentialDelay; retryAt: number }>();
  private readonly reconnect: ExponentialDelay;
  private reconnectAt = -Infinity;
  private outage = false;
  private closed = false;

  constructor(
    name: string,
    config: BusConfig,
    clock: Clock,
    log: Logger,
    tuning: BusTuning = DEFAULT_TUNING,
  ) {
    this.name = name;
    this.config = config;
    this.clock = clock;
    this.log = log;
    this.tuning = tuning;
    this.link = new ModbusLink(config, clock);
    this.reconnect = new ExponentialDelay(tuning.reconnectMin, tuning.reconnectMax);
  }

  /** Reads one block when the bus is free; never throws. */
  read(block: ReadBlock): Promise<BlockOutcome> {
    const run = this.tail.then(() => this.readNow(block));
    this.tail = run;
    return run;
  }

  /** Lets the requests already queued finish, then releases the connection or port. */
  async close(): Promise<void> {
    this.closed = true;
    await this.tail;
    await this.link.close();
  }

  private async readNow(block: ReadBlock): Promise<BlockOutcome> {
    if (this.closed) return this.fail(new ReadFailure('disconnected', 'bus stopped'));
    const unit = this.units.get(block.unitId);
    // Pauses and frame gaps run on monotonic time: a wall-clock step must not stretch them.
    const now = this.clock.monotonic();
    if (unit !== undefined && now < unit.retryAt) {
      const wait = Math.ceil(unit.retryAt - now);
      return this.fail(
        new ReadFailure('backoff', `unit ${block.unitId} not answering; next try in ${wait} ms`),
      );
    }
    // A unit on probation gets one attempt: a dead device must not hold the line for long.
    const attempts = unit === undefined ? 1 + this.config.retries : 1;
    let failure = new ReadFailure('disconnected', 'not tried');
    for (let i = 0; i < attempts; i++) {
      const connected = await this.ensureOpen();
      if (connected !== null) return this.fail(connected);
      await this.frameGap();
      try {
        const data = await this.link.read(block.unitId, block.table, block.start, block.count);
        this.lastFrameEnd = this.clock.monotonic();
        this.unitAnswered(block.unitId);
        return { ok: true, data, ts: this.clock.now() };
      } catch (err) {
        this.lastFrameEnd = this.clock.monotonic();
        failure = classify(err, this.config.timeout);
        if (failure.kind === 'exception' && PERMANENT_EXCEPTIONS.has(failure.exceptionCode ?? 0)) break;
      }
    }
    if (failure.kind === 'exception') {
      this.unitAnswered(block.unitId); // it answered: alive, just unhappy
    } else if (failure.kind !== 'disconnected') {
      this.unitSilent(block);
    }
    return this.fail(failure);
  }

  private fail(failure: ReadFailure): BlockOutcome {
    return { ok: false, failure, ts: this.clock.now() };
  }

  /** null when the link is open; otherwise why not. Reopens with backoff. */
  private async ensureOpen(): Promise<ReadFailure | null> {
    if (this.link.isOpen) return null;
    const now = this.clock.monotonic();
    if (!this.outage) {
      // First sign of trouble: try again at once, back off only if that fails.
      this.outage = true;
      this.reconnectAt = now;
    }
    if (now < this.reconnectAt) {
      const wait = Math.ceil(this.reconnectAt - now);
      return new ReadFailure(
        'disconnected',
        `${describeEndpoint(this.config)} not connected; next try in ${wait} ms`,
      );
    }
    try {
      await this.link.open();
    } catch (err) {
      const first = this.reconnect.attempts === 0;
      this.reconnectAt = this.clock.monotonic() + this.reconnect.next();
      const failure = classify(err, this.config.timeout);
      if (first) {
        const code = this.link.isSerial ? 'EDGEGW_E_SERIAL' : 'EDGEGW_E_SENSOR_READ';
        this.log.warn(
          { code, bus: this.name, endpoint: describeEndpoint(this.config) },
          `bus ${this.name}: cannot open ${describeEndpoint(this.config)} (${failure.message}); retrying with backoff`,
        );
      }
      return failure;
    }
    if (this.reconnect.attempts > 0 || this.lastFrameEnd !== -Infinity) {
      this.log.info({ bus: this.name }, `bus ${this.name}: ${describeEndpoint(this.config)} open again`);
    }
    this.outage = false;
    this.reconnect.reset();
    this.lastFrameEnd = -Infinity;
    return null;
  }

  private frameGap(): Promise<void> {
    const wait = this.lastFrameEnd + this.config.interFrameDelay - this.clock.monotonic();
    if (!(wait > 0)) return Promise.resolve();
    return new Promise((resolve) => this.clock.setTimeout(resolve, wait));
  }

  private unitAnswered(unitId: number): void {
    if (!this.units.has(unitId)) return;
    this.units.delete(unitId);
    this.log.info({ bus: this.name, unit: unitId }, `bus ${this.name}: unit ${unitId} answers again`);
  }

  private unitSilent(block: ReadBlock): void {
    let unit = this.units.get(block.unitId);
    if (unit === undefined) {
      unit = {
        delay: new ExponentialDelay(this.tuning.unitBackoffMin, this.tuning.unitBackoffMax),
        retryAt: 0,
      };
      this.units.set(block.unitId, unit);
    }
    const pause = unit.delay.next();
    unit.retryAt = this.clock.monotonic() + pause;
    if (unit.delay.attempts === 1) {
      this.log.warn(
        {
          code: 'EDGEGW_E_SENSOR_READ',
          bus: this.name,
          unit: block.unitId,
          sensors: block.sensors.map((s) => s.id),
        },
        `bus ${this.name}: ${describeRange(block.unitId, block.table, block.start, block.count)} not answering; ` +
          `backing off that unit (first pause ${pause} ms)`,
      );
    }
  }
}
