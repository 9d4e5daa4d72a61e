// The steps of a reload (operations issue) that need no daemon state: the key paths that changed
// (the file's, the board profile's and the TLS files'), each live change applied by its stage,
// and the refusal outcome. The daemon owns the order and the audit trail.

import type { Logger } from 'pino';
import type { LoadedConfig } from './config/load.js';
import type { SiteConfig } from './config/schema.js';
import { diffConfig, type ConfigChange, type ReloadPlan } from './config/diff.js';
import type { SealedQueue } from './queue/sealed-queue.js';
import type { Batcher } from './queue/batcher.js';
import type { Uplink, UplinkSettings } from './uplink/uplink.js';
import type { TlsMaterial } from './uplink/tls-files.js';
import type { StatusModel } from './status/model.js';
import type { SensorSet } from './sensors/sensor-set.js';
import type { Overlay } from './fleet/settable.js';
import { EdgegwError } from './errors.js';
import type { ReloadOutcome } from './reload.js';

/** The stages a reload changes, and what they run on. */
export interface Running {
  loaded: LoadedConfig;
  loadedAt: number;
  /** The remote overlay (fleet.shadow) the configuration was loaded with; {} when none. */
  overlay: Overlay;
  tls: TlsMaterial;
  queue: SealedQueue;
  batcher: Batcher;
  uplink: Uplink;
  sensors: SensorSet;
  model: StatusModel;
}

/** Applies the plan's live changes, each by the stage that owns it. */
export async function applyLive(
  run: Running,
  plan: ReloadPlan,
  next: LoadedConfig,
  tls: TlsMaterial,
  log: Logger,
): Promise<void> {
  const site = next.config;
  const by = plan.live;
  if (by.has('log')) log.level = site.log.level;
  if (by.has('sensors')) {
    const change = await run.sensors.apply(site, next.profile, () => run.batcher.settle());
    run.model.registerSensors(site.sensors.map((s) => s.id));
    log.info({ stopped: change.stopped, started: change.started, failed: change.failed }, 'sensors reloaded');
  }
  if (by.has('batcher')) {
    run.batcher.setFlush({ flushMs: site.queue.flush, maxReadings: site.queue.maxRecordReadings });
  }
  if (by.has('queue')) {
    await run.queue.setLimits({
      maxBytes: site.queue.maxBytes,
      whenFull: site.queue.whenFull,
      minFreeBytes: site.queue.minFreeBytes,
    });
  }
  if (by.has('uplink') || by.has('uplink-connection')) run.uplink.reconfigure(uplinkSettings(site, tls));
}

export function uplinkSettings(site: SiteConfig, tls: TlsMaterial): UplinkSettings {
  return {
    url: site.uplink.url,
    ...(site.uplink.alpn === undefined ? {} : { alpn: site.uplink.alpn }),
    topic: site.uplink.topic,
    keepaliveMs: site.uplink.keepalive,
    protocol: site.uplink.protocol,
    ackTimeoutMs: site.uplink.ackTimeout,
    limits: site.uplink.limits,
    compression: site.uplink.compression,
    backoff: { minMs: site.uplink.backoff.min, maxMs: site.uplink.backoff.max },
    tls,
  };
}

/**
 * The key paths a reload changes: the file's, plus the board profile and the TLS files, whose
 * contents may change under the same name (a certificate renewed in place).
 */
export function configChanges(run: Running, next: LoadedConfig, tls: TlsMaterial): ConfigChange[] {
  const changes = diffConfig(run.loaded.config, next.config);
  const has = (path: string) => changes.some((c) => c.path === path);
  const extra = (path: string, differs: boolean) => {
    if (differs && !has(path)) changes.push({ path, kind: 'changed' });
  };
  extra('gateway.profile', JSON.stringify(run.loaded.profile) !== JSON.stringify(next.profile));
  extra('uplink.ca', !run.tls.ca.equals(tls.ca));
  extra('uplink.cert', !run.tls.cert.equals(tls.cert));
  extra('uplink.key', !run.tls.key.equals(tls.key));
  return changes;
}

export function refused(
  run: Running | null,
  restartNeeded: string[],
  errors: string[],
  message: string,
): ReloadOutcome {
  return {
    applied: false,
    file: run?.loaded.file ?? '',
    changed: [],
    restartNeeded,
    errors,
    message,
    hash: run?.loaded.hash ?? '',
  };
}

/** The stable code of an EdgegwError, else `fallback`. */
export function errorCode(err: unknown, fallback: string): string {
  return err instanceof EdgegwError ? err.code : fallback;
}

export function errorText(err: unknown): string {
  // Our own messages name seqs, files and counts, never values: more use than the bare code.
  if (err instanceof EdgegwError) return err.message;
  if (err instanceof Error) return (err as NodeJS.ErrnoException).code ?? err.message;
  return String(err);
}
