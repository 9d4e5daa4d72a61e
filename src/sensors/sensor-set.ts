// The running sensor groups as a set a reload can change (operations issue). Each group (one bus,
// one pin, one sim) is known by a fingerprint of the configuration it was built from: its sensors,
// the buses they use and the board profile. A reload stops only the groups whose fingerprint is
// gone (a sensor removed or changed, its bus changed) and starts only the new ones; every other
// group, and the bus it owns, keeps polling untouched.

import type { Logger } from 'pino';
import type { BoardProfile } from '../config/profile.js';
import type { SiteConfig } from '../config/schema.js';
import { isModbusSensor } from '../config/schema.js';
import type { Clock, Lifecycle, SensorObserver } from '../types.js';
import { createSensorGroups } from './acquisition.js';
import type { SensorContext, SensorGroup } from './types.js';

export interface SensorSetOptions {
  observer: SensorObserver;
  clock: Clock;
  log: Logger;
  /** Builds the groups of a configuration (constructed, not started); tests inject drivers here. */
  create?: (ctx: SensorContext) => SensorGroup[];
}

export interface SensorSetChange {
  /** Sensor ids of the groups stopped and of those started (a changed group is in both). */
  stopped: string[];
  started: string[];
  /** Sensor ids of new groups whose start failed (logged; the rest of the reload stands). */
  failed: string[];
}

export class SensorSet implements Lifecycle {
  private readonly groups = new Map<string, SensorGroup>();
  private site: SiteConfig;
  private profile: BoardProfile | null;

  constructor(
    private readonly opts: SensorSetOptions,
    site: SiteConfig,
    profile: BoardProfile | null,
  ) {
    this.site = site;
    this.profile = profile;
  }

  /** Starts every group; one that fails stops those already started and fails the start. */
  async start(): Promise<void> {
    for (const [key, group] of this.build(this.site, this.profile)) {
      try {
        await group.start();
      } catch (err) {
        await this.stop();
        throw err;
      }
      this.groups.set(key, group);
    }
  }

  /** Stops every group, newest first (the batcher, stopped after, commits what they read). */
  async stop(): Promise<void> {
    for (const [key, group] of [...this.groups].reverse()) {
      this.groups.delete(key);
      try {
        await group.stop();
      } catch (err) {
        this.opts.log.warn({ sensors: group.sensorIds, err: errText(err) }, 'sensor group stop failed');
      }
    }
  }

  /** Running groups, in start order (status, watchdog). */
  list(): readonly SensorGroup[] {
    return [...this.groups.values()];
  }

  /**
   * Moves to `site`: stops the groups that no longer exist in it, runs `afterStop` (the daemon
   * commits what they read there), then starts the new ones.
   */
  async apply(
    site: SiteConfig,
    profile: BoardProfile | null,
    afterStop: () => Promise<void>,
  ): Promise<SensorSetChange> {
    const next = this.build(site, profile);
    const change: SensorSetChange = { stopped: [], started: [], failed: [] };
    for (const [key, group] of [...this.groups]) {
      if (next.has(key)) continue;
      this.groups.delete(key);
      change.stopped.push(...group.sensorIds);
      await group.stop().catch((err: unknown) => {
        this.opts.log.warn({ sensors: group.sensorIds, err: errText(err) }, 'sensor group stop failed');
      });
    }
    this.site = site;
    this.profile = profile;
    await afterStop();
    for (const [key, group] of next) {
      if (this.groups.has(key)) continue;
      try {
        await group.start();
        this.groups.set(key, group);
        change.started.push(...group.sensorIds);
      } catch (err) {
        change.failed.push(...group.sensorIds);
        this.opts.log.error(
          { code: 'EDGEGW_E_SENSOR_READ', sensors: group.sensorIds, err: errText(err) },
          'a reloaded sensor group did not start',
        );
      }
    }
    return change;
  }

  private build(site: SiteConfig, profile: BoardProfile | null): Map<string, SensorGroup> {
    const create = this.opts.create ?? createSensorGroups;
    const groups = create({
      site,
      profile,
      observer: this.opts.observer,
      clock: this.opts.clock,
      log: this.opts.log,
    });
    return new Map(groups.map((g) => [fingerprint(g, site, profile), g]));
  }
}

/** What a group was built from; equal fingerprints mean the running group already does the job. */
export function fingerprint(group: SensorGroup, site: SiteConfig, profile: BoardProfile | null): string {
  const sensors = group.sensorIds.map((id) => site.sensors.find((s) => s.id === id) ?? null);
  const buses = [...new Set(sensors.flatMap((s) => (s !== null && isModbusSensor(s) ? [s.bus] : [])))];
  return JSON.stringify({
    sensors,
    buses: buses.map((b) => [b, site.buses[b] ?? null]),
    profile,
  });
}

function errText(err: unknown): string {
  if (err instanceof Error) return (err as NodeJS.ErrnoException).code ?? err.message;
  return String(err);
}
