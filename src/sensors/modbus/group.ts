// One SensorGroup per bus: the sensors of each `every` poll on their own fixed grid, their reads
// coalesced into blocks and queued on the bus owner. A poll the bus cannot fit in is skipped and
// reported as an overrun, never piled up. A failed block yields 'bad' readings (value 0, or false
// for a bit) for its own sensors only and counts an error per sensor; a value is reported only
// from the response that carried it, so an old value is never re-emitted as fresh.

import type { BusConfig, ModbusSensorConfig } from '../../config/schema.js';
import type { Progress, Reading } from '../../types.js';
import { FixedGrid } from '../schedule.js';
import type { CommissionResult, SensorContext, SensorGroup } from '../types.js';
import { ModbusBus, type BlockOutcome, type BusTuning } from './bus.js';
import { badValue, extract } from './extract.js';
import { describeRange, planReads, sensorWidth, type ReadBlock } from './plan.js';

const OVERRUN_LOG_EVERY_MS = 60_000;

export class ModbusBusGroup implements SensorGroup {
  readonly sensorIds: readonly string[];
  private readonly ctx: SensorContext;
  private readonly busName: string;
  private readonly config: BusConfig;
  private readonly sensors: readonly ModbusSensorConfig[];
  private readonly tuning: BusTuning | undefined;
  private bus: ModbusBus | null = null;
  private grids: FixedGrid[] = [];
  private readonly failing = new Set<string>();
  private overrunLoggedAt = -Infinity;
  private overrunUnlogged = 0;

  constructor(
    ctx: SensorContext,
    busName: string,
    config: BusConfig,
    sensors: readonly ModbusSensorConfig[],
    tuning?: BusTuning,
  ) {
    this.ctx = ctx;
    this.busName = busName;
    this.config = config;
    this.sensors = sensors;
    this.tuning = tuning;
    this.sensorIds = sensors.map((s) => s.id);
  }

  start(): Promise<void> {
    if (this.bus !== null) return Promise.resolve();
    const bus = this.newBus();
    this.bus = bus;
    const periods = [...new Set(this.sensors.map((s) => s.every))].sort((a, b) => a - b);
    const t0 = this.ctx.clock.monotonic();
    const plans = periods.map((every) => this.plan(this.sensors.filter((s) => s.every === every)));
    const maxTickMs = this.worstPollMs(plans.reduce((n, p) => n + p.length, 0));
    this.grids = periods.map((every, i) => {
      const plan = plans[i] ?? [];
      return new FixedGrid({
        clock: this.ctx.clock,
        period: every,
        t0,
        maxTickMs,
        tick: () => this.poll(bus, plan),
        onSkip: (n) => this.overrun(n),
        onError: (err) => this.ctx.log.error({ bus: this.busName, err }, `bus ${this.busName}: poll failed`),
      });
    });
    for (const g of this.grids) g.start();
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    const grids = this.grids;
    const bus = this.bus;
    this.grids = [];
    this.bus = null;
    await Promise.all(grids.map((g) => g.stop()));
    await bus?.close();
  }

  progress(): Progress[] {
    return this.grids.map((g) => g.progress());
  }

  /**
   * A poll's worst case when every device times out: the bus owner runs every block of the bus
   * (all grids share it) one at a time, each attempt a reopen and a read, each up to `timeout`.
   * The watchdog allows this much before it calls a grid stalled: a dead device is no stall.
   */
  private worstPollMs(blocks: number): number {
    const { timeout, retries, interFrameDelay } = this.config;
    return blocks * (1 + retries) * (2 * timeout + interFrameDelay);
  }

  async readOnce(): Promise<CommissionResult[]> {
    const shared = this.bus;
    const bus = shared ?? this.newBus();
    try {
      const blocks = this.plan(this.sensors);
      const outcomes = await Promise.all(blocks.map((b) => bus.read(b)));
      const rows = new Map<string, CommissionResult>();
      blocks.forEach((block, i) => {
        const outcome = outcomes[i];
        if (outcome === undefined) return;
        for (const s of block.sensors) rows.set(s.id, this.commissionRow(s, block, outcome));
      });
      return this.sensors.flatMap((s) => rows.get(s.id) ?? []);
    } finally {
      if (shared === null) await bus.close();
    }
  }

  private newBus(): ModbusBus {
    return new ModbusBus(this.busName, this.config, this.ctx.clock, this.ctx.log, this.tuning);
  }

  private plan(sensors: readonly ModbusSensorConfig[]): ReadBlock[] {
    return planReads(sensors, { maxGap: this.config.maxGap });
  }

  /** One tick of one `every` group: every block queued on the bus; resolves when all answered. */
  private async poll(bus: ModbusBus, plan: ReadBlock[]): Promise<void> {
    await Promise.all(
      plan.map(async (block, i) => {
        const outcome = await bus.read(block);
        if (!outcome.ok && isIllegalAddress(outcome) && block.sensors.length > 1) {
          await this.split(bus, plan, i, block);
          return;
        }
        this.report(block, outcome);
      }),
    );
  }

  /**
   * A coalesced read refused as an illegal address may only be spanning a hole the device does
   * not map. Read its sensors one by one; if some answer, keep them apart from now on.
   */
  private async split(bus: ModbusBus, plan: ReadBlock[], index: number, block: ReadBlock): Promise<void> {
    const singles = block.sensors.map((s) => ({
      ...block,
      start: s.address,
      count: sensorWidth(s),
      sensors: [s],
    }));
    const outcomes = await Promise.all(singles.map((b) => bus.read(b)));
    singles.forEach((b, i) => {
      const o = outcomes[i];
      if (o !== undefined) this.report(b, o);
    });
    if (outcomes.some((o) => o.ok) && plan[index] === block) {
      plan.splice(index, 1, ...singles);
      this.ctx.log.info(
        { bus: this.busName, sensors: block.sensors.map((s) => s.id) },
        `bus ${this.busName}: ${this.where(block)} refused as one read; reading its sensors separately`,
      );
    }
  }

  private report(block: ReadBlock, outcome: BlockOutcome): void {
    const { observer, log } = this.ctx;
    const key = this.where(block);
    if (!outcome.ok) {
      const message = `${key}: ${outcome.failure.message}`;
      for (const s of block.sensors) {
        observer.reading({ sensor: s.id, ts: outcome.ts, value: badValue(s), quality: 'bad' });
        observer.error(s.id, 'EDGEGW_E_SENSOR_READ', message);
      }
      if (!this.failing.has(key)) {
        this.failing.add(key);
        log.warn(
          { code: 'EDGEGW_E_SENSOR_READ', bus: this.busName, sensors: block.sensors.map((s) => s.id) },
          `bus ${message}; readings marked bad`,
        );
      }
      return;
    }
    if (this.failing.delete(key)) {
      log.info({ bus: this.busName, sensors: block.sensors.map((s) => s.id) }, `bus ${key}: reading again`);
    }
    for (const s of block.sensors) observer.reading(this.reading(s, block, outcome.data, outcome.ts));
  }

  private reading(
    s: ModbusSensorConfig,
    block: ReadBlock,
    data: readonly (number | boolean)[],
    ts: number,
  ): Reading {
    const { value } = extract(s, block, data);
    if (value === null) {
      this.ctx.observer.error(s.id, 'EDGEGW_E_SENSOR_READ', `${this.where(block)}: register holds no number`);
      return { sensor: s.id, ts, value: badValue(s), quality: 'bad' };
    }
    return { sensor: s.id, ts, value, quality: 'good' };
  }

  private commissionRow(s: ModbusSensorConfig, block: ReadBlock, outcome: BlockOutcome): CommissionResult {
    const row: CommissionResult = {
      id: s.id,
      where: `${this.busName} ${describeRange(s.unitId, s.table, s.address, sensorWidth(s))}`,
      value: null,
      quality: 'bad',
      ts: outcome.ts,
    };
    if (s.unit !== undefined) row.unit = s.unit;
    if (!outcome.ok) {
      row.error = outcome.failure.message;
      return row;
    }
    const { raw, value } = extract(s, block, outcome.data);
    row.raw = raw;
    if (value === null) {
      row.error = 'register holds no number (NaN or infinity)';
    } else {
      row.value = value;
      row.quality = 'good';
    }
    return row;
  }

  private where(block: ReadBlock): string {
    return `${this.busName} ${describeRange(block.unitId, block.table, block.start, block.count)}`;
  }

  private overrun(skipped: number): void {
    this.ctx.observer.overrun(this.busName, skipped);
    this.overrunUnlogged += skipped;
    const now = this.ctx.clock.monotonic();
    if (now - this.overrunLoggedAt < OVERRUN_LOG_EVERY_MS) return;
    this.ctx.log.warn(
      { code: 'EDGEGW_E_SENSOR_OVERRUN', bus: this.busName, skipped: this.overrunUnlogged },
      `bus ${this.busName} cannot keep up with its sensors' schedule; ${this.overrunUnlogged} poll(s) skipped`,
    );
    this.overrunLoggedAt = now;
    this.overrunUnlogged = 0;
  }
}

function isIllegalAddress(o: BlockOutcome): boolean {
  return !o.ok && o.failure.kind === 'exception' && o.failure.exceptionCode === 2;
}
