// The fleet features (issue 11) as one stage the daemon starts once it runs: the shadow's remote
// configuration, the IoT Jobs runner, the Device Defender metrics; each only when fleet.* says so.
// Everything goes over the uplink's control channel: no second connection.

import type { Logger } from 'pino';
import { ConfigError, type LoadedConfig } from '../config/load.js';
import type { ReloadOutcome } from '../reload.js';
import type { StatusSnapshot } from '../status/model.js';
import type { Clock } from '../types.js';
import type { Control } from '../uplink/control.js';
import {
  OverlayUnreadableError,
  readOverlay,
  type OverlayKeys,
  type StoredOverlay,
} from './overlay-store.js';
import { splitDesired, type Overlay } from './settable.js';
import { ShadowSync, type ShadowStatus } from './shadow-sync.js';
import type { LinkProbe } from './uplink-proof.js';
import { JobRunner, type JobsStatus } from './job-runner.js';
import { operationRegistry, type Operation } from './operations.js';
import { runDoctor } from '../doctor/doctor.js';
import { DefenderReporter, type DefenderStatus } from './defender.js';
import { doctorLines } from './diagnostics.js';

/** `edgegw status` → fleet. */
export interface FleetStatus {
  shadow: ShadowStatus | null;
  jobs: JobsStatus | null;
  defender: DefenderStatus | null;
}

export interface FleetDeps {
  loaded: () => LoadedConfig;
  overlay: () => Overlay;
  stored: StoredOverlay | null;
  /** Why the stored overlay was refused at start (shown in status), or null. */
  storedRefused: string | null;
  /** The queue keys the stored overlay is sealed with. */
  keys: OverlayKeys;
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
  /** The rotate-queue-key job: a new queue key sealing from the next record (queue-key-rotation.ts). */
  rotateQueueKey: () => Promise<{ keyId: string; fromSeq: number }>;
}

export interface BootOverlay {
  loaded: LoadedConfig;
  overlay: Overlay;
  stored: StoredOverlay | null;
  /** Why the stored overlay was refused (EDGEGW_E_FLEET_OVERLAY), or null. */
  refused: string | null;
  /**
   * Set when this user could not read it (another user's file, a folder or keys closed to this
   * one): what the daemon's user reads is unknown.
   */
  unreadable?: string;
}

/**
 * The configuration to start with: the site file plus the stored overlay, when it opens with the
 * queue keys (`keys`, asked only with fleet.shadow) and still validates.
 */
export async function bootOverlay(
  base: LoadedConfig,
  load: (overlay: Overlay) => Promise<LoadedConfig>,
  keys: () => Promise<OverlayKeys>,
  log: Logger,
): Promise<BootOverlay> {
  const shadow = base.config.fleet.shadow;
  if (shadow === undefined) return { loaded: base, overlay: {}, stored: null, refused: null };
  let stored: StoredOverlay | null;
  try {
    stored = await readOverlay(base.config.gateway.dataDir, keys);
  } catch (err) {
    const why = (err as Error).message;
    log.warn({ code: 'EDGEGW_E_FLEET_OVERLAY' }, `${why}; starting with the site file alone`);
    const unreadable = err instanceof OverlayUnreadableError ? { unreadable: why } : {};
    return { loaded: base, overlay: {}, stored: null, refused: why, ...unreadable };
  }
  if (stored === null || Object.keys(stored.overlay).length === 0)
    return { loaded: base, overlay: {}, stored, refused: null };
  // Keys the site file has marked local-only since are left out (the file wins for them).
  const { overlay } = splitDesired(nest(stored.overlay), shadow.localOnly);
  try {
    return { loaded: await load(overlay), overlay, stored, refused: null };
  } catch (err) {
    const why = err instanceof ConfigError ? `${err.issues.length} error(s)` : (err as Error).message;
    log.warn(
      { code: 'EDGEGW_E_FLEET_OVERLAY', shadowVersion: stored.shadowVersion },
      `the stored remote overlay no longer validates with the site file (${why}); starting with the site file alone`,
    );
    return {
      loaded: base,
      overlay: {},
      stored,
      refused: `it no longer validates with the site file (${why})`,
    };
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
        storedRefused: d.storedRefused,
        keys: d.keys,
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
        clock: d.clock,
        operations: operationRegistry(d.operations),
        context: {
          reload: d.reload,
          setLogLevel: (level) => {
            const previous = d.log.level;
            d.log.level = level;
            return previous;
          },
          rotateQueueKey: d.rotateQueueKey,
          diagnostics: async () => ({
            ...redactedStatus(d.snapshot()),
            doctor: doctorLines(await runDoctor({ configFile: d.loaded().file })),
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
    return {
      shadow: this.shadow?.status() ?? null,
      jobs: this.jobs?.status() ?? null,
      defender: this.defender?.status() ?? null,
    };
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
