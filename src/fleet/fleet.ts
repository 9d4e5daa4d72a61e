// The fleet features (issue 11) as one stage the daemon starts once it runs: the shadow's remote
// configuration, the IoT Jobs runner, the Device Defender metrics; each only when fleet.* says so.
// Everything goes over the uplink's control channel: no second connection.

import type { Logger } from 'pino';
import { ConfigError, type LoadedConfig } from '../config/load.js';
import type { ReloadOutcome } from '../reload.js';
import type { StatusSnapshot } from '../status/model.js';
import type { Clock } from '../types.js';
import type { Control } from '../uplink/control.js';
import { readOverlay, type StoredOverlay } from './overlay-store.js';
import { splitDesired, type Overlay } from './settable.js';
import { ShadowSync, type ShadowStatus } from './shadow-sync.js';
import type { LinkProbe } from './uplink-proof.js';
import { JobRunner, type JobsStatus } from './job-runner.js';
import { JobFailure, operationRegistry, type Operation } from './operations.js';
import { keyFileId, rotateKey } from '../seal/rotated-keys.js';
import { resolve, sep } from 'node:path';
import { runDoctor } from '../doctor/doctor.js';
import { DefenderReporter } from './defender.js';

/** `edgegw status` → fleet. */
export interface FleetStatus {
  shadow: ShadowStatus | null;
  jobs: JobsStatus | null;
}

export interface FleetDeps {
  loaded: () => LoadedConfig;
  overlay: () => Overlay;
  stored: StoredOverlay | null;
  control: Control;
  clock: Clock;
  log: Logger;
  version: string;
  snapshot: () => StatusSnapshot;
  apply: (overlay: Overlay) => Promise<ReloadOutcome>;
  /** A reload of the site file, keeping the running overlay (the `reload` job). */
  reload: () => Promise<ReloadOutcome>;
  /** Job operations that live elsewhere (the identity work's `rotate-certificate`). */
  operations: Record<string, Operation>;
}

/** The configuration to start with: the site file plus the stored overlay, when it still validates. */
export async function bootOverlay(
  base: LoadedConfig,
  load: (overlay: Overlay) => Promise<LoadedConfig>,
  log: Logger,
): Promise<{
  loaded: LoadedConfig;
  overlay: Overlay;
  stored: StoredOverlay | null;
  /** Why the stored overlay could not be read (another user's file, a folder closed to this one). */
  unreadable?: string;
}> {
  const shadow = base.config.fleet.shadow;
  if (shadow === undefined) return { loaded: base, overlay: {}, stored: null };
  let stored: StoredOverlay | null;
  try {
    stored = await readOverlay(base.config.gateway.dataDir);
  } catch (err) {
    log.warn({ code: 'EDGEGW_E_FLEET_OVERLAY' }, (err as Error).message);
    return { loaded: base, overlay: {}, stored: null, unreadable: (err as Error).message };
  }
  if (stored === null || Object.keys(stored.overlay).length === 0)
    return { loaded: base, overlay: {}, stored };
  // Keys the site file has marked local-only since are left out (the file wins for them).
  const { overlay } = splitDesired(nest(stored.overlay), shadow.localOnly);
  try {
    return { loaded: await load(overlay), overlay, stored };
  } catch (err) {
    const why = err instanceof ConfigError ? `${err.issues.length} error(s)` : (err as Error).message;
    log.warn(
      { code: 'EDGEGW_E_FLEET_OVERLAY', shadowVersion: stored.shadowVersion },
      `the stored remote overlay no longer validates with the site file (${why}); starting with the site file alone`,
    );
    return { loaded: base, overlay: {}, stored };
  }
}

export class Fleet {
  private shadow: ShadowSync | null = null;
  private jobs: JobRunner | null = null;
  private defender: DefenderReporter | null = null;

  constructor(private readonly deps: FleetDeps) {}

  async start(): Promise<void> {
    const d = this.deps;
    const site = d.loaded().config;
    const s = site.fleet.shadow;
    if (s !== undefined) {
      this.shadow = new ShadowSync({
        control: d.control,
        thing: site.gateway.id,
        settings: {
          name: s.name,
          localOnly: s.localOnly,
          revertAfterMs: s.revertAfter,
          reportIntervalMs: s.reportInterval,
        },
        dataDir: site.gateway.dataDir,
        clock: d.clock,
        log: d.log.child({ stage: 'fleet-shadow' }),
        version: d.version,
        stored: d.stored,
        overlay: d.overlay,
        apply: d.apply,
        siteDocument: () => d.loaded().document,
        configHash: () => d.loaded().hash,
        health: () => health(d.snapshot()),
        link: () => link(d.snapshot()),
      });
      await this.shadow.start();
    }
    if (site.fleet.jobs) {
      this.jobs = new JobRunner({
        control: d.control,
        thing: site.gateway.id,
        dataDir: site.gateway.dataDir,
        log: d.log.child({ stage: 'fleet-jobs' }),
        operations: operationRegistry(d.operations),
        context: {
          reload: d.reload,
          setLogLevel: (level) => {
            const previous = d.log.level;
            d.log.level = level;
            return previous;
          },
          rotateQueueKey: async () => {
            const { queue, gateway } = d.loaded().config;
            const dir = queue.rotatedKeysDir;
            if (dir === undefined) {
              throw new JobFailure(
                'queue.rotatedKeysDir is not set: there is no folder to write the new key to',
              );
            }
            if (`${resolve(dir)}${sep}`.startsWith(`${resolve(gateway.dataDir)}${sep}`)) {
              throw new JobFailure(
                'queue.rotatedKeysDir is inside gateway.dataDir: keys never live beside the queue',
              );
            }
            return rotateKey(dir, await keyFileId(queue.keyFile));
          },
          diagnostics: async () => ({
            ...redactedStatus(d.snapshot()),
            doctor: (await runDoctor({ configFile: d.loaded().file })).map((l) => `${l.result} ${l.check}`),
          }),
        },
      });
      await this.jobs.start();
    }
    if (site.fleet.defender !== undefined) {
      this.defender = new DefenderReporter({
        control: d.control,
        thing: site.gateway.id,
        intervalMs: site.fleet.defender.interval,
        clock: d.clock,
        log: d.log.child({ stage: 'fleet-defender' }),
        figures: () => {
          const s = d.snapshot();
          return {
            backlogReadings: s.queue.readings,
            backlogAgeS: s.queue.ageS,
            droppedReadings: s.counters.dropped,
            quarantinedRecords: s.counters.quarantined,
            uplinkReconnects: s.uplink.reconnects,
          };
        },
      });
      await this.defender.start();
    }
  }

  async stop(): Promise<void> {
    await this.defender?.stop();
    await this.jobs?.stop();
    await this.shadow?.stop();
  }

  status(): FleetStatus {
    return { shadow: this.shadow?.status() ?? null, jobs: this.jobs?.status() ?? null };
  }
}

/** The short health summary the shadow reports (counts and states, never values). */
function health(s: StatusSnapshot): Record<string, string | number | null> {
  return {
    uplink: s.uplink.state,
    backlogReadings: s.queue.readings,
    backlogAgeS: s.queue.ageS,
    dropped: s.counters.dropped,
    quarantined: s.counters.quarantined,
    reconnects: s.uplink.reconnects,
    sensorsInError: s.sensors.filter((x) => x.lastError !== null).length,
  };
}

/** The status for a diagnostics job: states, counts and codes; no sensor value, no secret. */
function redactedStatus(s: StatusSnapshot): Record<string, unknown> {
  return {
    gateway: s.gateway,
    version: s.version,
    uptimeS: s.uptimeS,
    config: s.config?.hash ?? null,
    uplink: { state: s.uplink.state, reconnects: s.uplink.reconnects, lastError: s.uplink.lastError },
    queue: { records: s.queue.records, readings: s.queue.readings, ageS: s.queue.ageS },
    counters: s.counters,
    clock: { ok: s.clock.ok, issue: s.clock.issue },
    sensors: s.sensors.map((x) => ({ id: x.id, errors: x.errors, lastError: x.lastError })),
  };
}

function link(s: StatusSnapshot): LinkProbe {
  return {
    state: s.uplink.state,
    reconnects: s.uplink.reconnects,
    delivered: s.counters.delivered,
    backlog: s.queue.readings,
    lastError: s.uplink.lastError,
  };
}

/** A stored overlay back to the nested shape `desired` has (splitDesired flattens it again). */
function nest(overlay: Overlay): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [path, v] of Object.entries(overlay)) {
    const segs = path.split('.');
    let o = out;
    for (const seg of segs.slice(0, -1)) o = (o[seg] ??= {}) as Record<string, unknown>;
    o[segs[segs.length - 1]!] = v;
  }
  return out;
}
