// The composition root: the only module that knows every stage. It wires
// sensors → batcher → seal → queue → uplink (DESIGN.md §1), owns the lifecycle, applies reloads
// (operations issue), and tells systemd.

import type { Logger } from 'pino';
import { ConfigError, formatIssue, loadConfig, type LoadedConfig } from './config/load.js';
import type { SiteConfig } from './config/schema.js';
import { describeChange, diffConfig, planReload, type ConfigChange } from './config/diff.js';
import { assertPrivateFile } from './seal/keyfile.js';
import { Keyring } from './seal/keyring.js';
import { openedForm } from './seal/sealer.js';
import { SealedQueue } from './queue/sealed-queue.js';
import { QueueRecordSource } from './queue/record-source.js';
import { Batcher } from './queue/batcher.js';
import { DEFAULT_DRAIN_MS, Uplink, type UplinkSettings } from './uplink/uplink.js';
import { loadTlsFiles, type TlsMaterial } from './uplink/tls-files.js';
import { StatusModel } from './status/model.js';
import { StatusServer } from './status/server.js';
import { SdNotify } from './status/sd-notify.js';
import { ProgressMonitor, type ProgressProbe } from './status/progress.js';
import { statusLine } from './status/status-line.js';
import { SensorSet } from './sensors/sensor-set.js';
import { wireClock, type ClockInputs } from './clock-wiring.js';
import { systemClock, type Clock, type Lifecycle, type Reading, type SensorObserver } from './types.js';
import { VERSION } from './version.js';
import { EdgegwError, Exit } from './errors.js';
import { audit } from './audit.js';
import type { ConfigStatus, ReloadOutcome } from './reload.js';
import { dropPreviousWhenConnected, settleIdentity } from './identity/at-start.js';

export interface DaemonOptions {
  loaded: LoadedConfig;
  log: Logger;
  clock?: Clock;
  /** Bounded wait for in-flight PUBACKs on stop (DESIGN.md §2.7). */
  drainMs?: number;
  /** Extra observer of readings (the demo's live line). */
  tap?: (r: Reading) => void;
  /**
   * The queue can neither write nor reopen its database. Default: stop cleanly, then exit
   * non-zero (EX_IOERR) so systemd restarts the daemon.
   */
  onFatal?: () => void;
  /** How a reload reads the configuration again; default: the loader, on the same file. */
  load?: () => Promise<LoadedConfig>;
  /** The clock sync's inputs (tests): sync source, boot id, ms since boot (clock-wiring.ts). */
  clockSync?: ClockInputs;
}

/** The stages a reload changes, and what they run on. */
interface Running {
  loaded: LoadedConfig;
  loadedAt: number;
  tls: TlsMaterial;
  queue: SealedQueue;
  batcher: Batcher;
  uplink: Uplink;
  sensors: SensorSet;
  model: StatusModel;
}

export class Daemon {
  private readonly opts: DaemonOptions;
  private readonly clock: Clock;
  private started: { name: string; stage: Lifecycle }[] = [];
  private model: StatusModel | null = null;
  private notify: SdNotify | null = null;
  private running: Running | null = null;
  private stopping: Promise<void> | null = null;
  /** Reloads run one at a time, in the order asked. */
  private reloads: Promise<unknown> = Promise.resolve();
  /** A certificate rotation under way: reloads wait for it; a stop aborts it (it must stay bounded). */
  private rotation: { done: Promise<unknown>; abort: AbortController } | null = null;

  constructor(opts: DaemonOptions) {
    this.opts = opts;
    this.clock = opts.clock ?? systemClock;
  }

  get status(): StatusModel {
    if (this.model === null) throw new Error('daemon not started');
    return this.model;
  }

  /** Checks key files, then starts every stage; on failure, stops what had started. */
  async start(): Promise<void> {
    const loaded = this.opts.loaded;
    const site = loaded.config;
    const log = this.opts.log;

    // A rotation or provision cut by a crash is settled before the TLS files are read.
    const identity = { cert: site.uplink.cert, key: site.uplink.key };
    await settleIdentity(identity, log);
    // Refuse insecure key files before touching disk or network (exit 77).
    await assertPrivateFile(site.uplink.key, 'uplink.key');
    const keyring = await Keyring.load(site.queue.keyFile, site.queue.previousKeyFiles);
    const tls = await loadTlsFiles(site.uplink);

    const queue = new SealedQueue({
      dir: site.gateway.dataDir,
      maxBytes: site.queue.maxBytes,
      whenFull: site.queue.whenFull,
      durability: site.queue.durability,
      seal: (seq, readings, ids) => keyring.seal(seq, readings, ids),
      // Write-behind (queue/write-behind.ts): while the uplink is connected, up to its in-flight
      // window of records wait in memory for their PUBACK and are written only if it is late.
      opened: openedForm,
      writeBehind: () => uplink?.writeBehindRoom() ?? 0,
      sealNotice: (seq, notice, t0) => keyring.sealNotice(seq, notice, t0),
      log: log.child({ stage: 'queue' }),
      minFreeBytes: site.queue.minFreeBytes,
      // Nothing the queue can do keeps more data: exit non-zero so systemd restarts the daemon.
      onFatal: (err) => this.fatal(err),
      // A start whose keys cannot open every stored record is refused (EDGEGW_E_QUEUE_KEY).
      keys: { current: keyring.currentId, files: keyring.files(), identify: (rec) => keyring.identify(rec) },
    });

    let uplink: Uplink | null = null;
    // True timestamps (clock-wiring.ts): stamping, commit marks, held and corrected records.
    const clock = await wireClock({ site, queue, clock: this.clock, log, inputs: this.opts.clockSync });
    const model = new StatusModel({
      gateway: site.gateway.id,
      version: VERSION,
      clock: this.clock,
      uplink: () =>
        uplink?.state() ?? { state: 'offline', broker: '', since: 0, inflight: 0, lastError: null },
      queue: () => queue.stats(),
      queueCounters: () => queue.sinceStart(),
      clockIssue: () => clock.clockIssue(),
      clockSync: () => clock.status(),
      config: () => this.configStatus(),
    });
    model.registerSensors(site.sensors.map((s) => s.id));
    this.model = model;

    // The queue counts what it committed, dropped, lost and quarantined (status reads it there).
    const batcher = new Batcher({
      flushMs: site.queue.flush,
      maxReadings: site.queue.maxRecordReadings,
      clock: this.clock,
      commit: (readings, durableBy) => clock.commit(readings, durableBy),
      onError: (err) =>
        log.error({ code: errorCode(err, 'EDGEGW_E_QUEUE_WRITE'), err: errorText(err) }, 'commit failed'),
    });

    const source = new QueueRecordSource(
      queue,
      (rec) => keyring.open(rec, queue.sealedBy(rec.seq), queue.sensorIds),
      () => undefined,
    );
    uplink = new Uplink({
      gatewayId: site.gateway.id,
      ...uplinkSettings(site, tls),
      source,
      log: log.child({ stage: 'uplink' }),
      clock: this.clock,
      onMessage: () => model.message(),
    });

    const tap = this.opts.tap;
    const fanout: SensorObserver = {
      reading: (r) => {
        model.reading(r);
        batcher.add(r);
        tap?.(r);
      },
      error: (sensor, code, message) => model.error(sensor, code, message),
      overrun: (scope, skipped) => model.overrun(scope, skipped),
    };
    const sensors = new SensorSet(
      { observer: clock.observer(fanout), clock: clock.stampClock, log: log.child({ stage: 'sensors' }) },
      site,
      loaded.profile,
    );

    // The watchdog pings only while every stage makes progress (src/status/progress.ts); the
    // sensor groups are read at each check, so a reload's new groups are watched too.
    const probes = (): ProgressProbe[] => [
      { name: 'batcher', progress: () => batcher.progress() },
      { name: 'uplink', progress: () => uplink.progress() },
      ...sensors
        .list()
        .map((g) => ({ name: `sensors ${g.sensorIds.join(',')}`, progress: () => g.progress() })),
    ];
    const notify = new SdNotify({
      log: log.child({ stage: 'sd-notify' }),
      health: new ProgressMonitor({ clock: this.clock, probes }),
      statusText: () => statusLine(model.snapshot(), this.clock.now()),
    });
    this.notify = notify;
    const reload = () => this.reload();
    const stages: { name: string; stage: Lifecycle }[] = [
      { name: 'queue', stage: queue },
      // After the queue (it corrects the ranges there), before the uplink (which must find them held).
      ...(clock.sync === null ? [] : [{ name: 'clock', stage: clock.sync }]),
      {
        name: 'status',
        stage: new StatusServer({
          socketPath: site.status.socket,
          model,
          log,
          reload,
          rotate: () => this.rotateCertificate(),
        }),
      },
      ...(site.status.metrics === undefined
        ? []
        : [{ name: 'metrics', stage: await metricsServer(site.status.metrics, model, log) }]),
      { name: 'uplink', stage: uplink },
      { name: 'batcher', stage: batcher },
      { name: 'sensors', stage: sensors },
      { name: 'sd-notify', stage: notify },
    ];
    dropPreviousWhenConnected(uplink.control, identity, log);
    try {
      for (const s of stages) {
        await s.stage.start();
        this.started.push(s);
      }
    } catch (err) {
      await this.stopStages('start failed');
      throw err;
    }
    // Only now may a reload change the stages (a SIGHUP during the start is refused).
    this.running = { loaded, loadedAt: this.clock.now(), tls, queue, batcher, uplink, sensors, model };
    notify.ready(notify.statusNow() ?? `${site.sensors.length} sensors`);
    log.info({ sensors: site.sensors.length, version: VERSION }, 'edgegw started');
    audit(
      log,
      'start',
      { version: VERSION, sensors: site.sensors.length, configHash: loaded.hash, file: loaded.file },
      'edgegw started',
    );
  }

  /**
   * SIGHUP and `edgegw reload`: reads the configuration again and applies it live, or refuses all
   * of it (invalid, or a key only a restart can apply) and keeps the running one.
   */
  reload(): Promise<ReloadOutcome> {
    const next = this.reloads.then(() => this.rotation?.done).then(() => this.reloadOnce());
    this.reloads = next.catch(() => undefined);
    return next;
  }

  private async reloadOnce(): Promise<ReloadOutcome> {
    const run = this.running;
    const log = this.opts.log;
    if (run === null || this.stopping !== null) {
      return refused(run, [], [], 'the daemon is not running (starting or stopping)');
    }
    let next: LoadedConfig;
    let tls: TlsMaterial;
    try {
      next = await (this.opts.load ?? (() => loadConfig(run.loaded.file)))();
      // Certificates renewed in place keep their paths: the files are read again every time.
      await assertPrivateFile(next.config.uplink.key, 'uplink.key');
      tls = await loadTlsFiles(next.config.uplink);
    } catch (err) {
      const errors = err instanceof ConfigError ? err.issues.map(formatIssue) : [];
      for (const line of errors) log.error({ code: 'EDGEGW_E_CONFIG' }, line);
      const why =
        err instanceof ConfigError
          ? `the configuration has ${errors.length} error(s)`
          : `${errorText(err)} [${errorCode(err, 'EDGEGW_E_CONFIG')}]`;
      audit(log, 'reload-refused', { reason: 'invalid', errors: errors.length, file: run.loaded.file }, why);
      return refused(run, [], errors, `reload refused: ${why}; the running configuration goes on`);
    }

    const changes = configChanges(run, next, tls);
    const plan = planReload(changes);
    if (plan.restartNeeded.length > 0) {
      const why = `${plan.restartNeeded.join(', ')} can only change with a restart (systemctl restart edgegw)`;
      audit(log, 'reload-refused', { reason: 'restart-needed', keys: plan.restartNeeded }, why);
      log.warn({ code: 'EDGEGW_E_RELOAD_RESTART', keys: plan.restartNeeded }, `reload refused: ${why}`);
      return refused(run, [...plan.restartNeeded], [], `reload refused: ${why}; nothing of it was applied`);
    }

    const site = next.config;
    const by = plan.live;
    if (by.has('log')) log.level = site.log.level;
    if (by.has('sensors')) {
      const change = await run.sensors.apply(site, next.profile, () => run.batcher.settle());
      run.model.registerSensors(site.sensors.map((s) => s.id));
      log.info(
        { stopped: change.stopped, started: change.started, failed: change.failed },
        'sensors reloaded',
      );
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
    Object.assign(run, { loaded: next, loadedAt: this.clock.now(), tls });

    const changed = changes.map(describeChange);
    const message =
      changed.length === 0 ? 'reloaded: nothing changed' : `reloaded: ${changed.length} change(s) applied`;
    audit(log, 'reload', { changed, configHash: next.hash, file: next.file }, message);
    return {
      applied: true,
      file: next.file,
      changed,
      restartNeeded: [],
      errors: [],
      message,
      hash: next.hash,
    };
  }

  /**
   * `edgegw rotate-certificate` and the rotate-certificate job: rotates on the live connection
   * (identity/rotate.ts). Runs in turn with reloads, so neither sees the other's files half done.
   */
  rotateCertificate(): Promise<Record<string, string>> {
    const run = this.running;
    if (run === null || this.stopping !== null || this.rotation !== null) {
      const why = this.rotation !== null ? 'a rotation is already running' : 'the daemon is not running';
      return Promise.reject(new EdgegwError('EDGEGW_E_ROTATION', `certificate rotation refused: ${why}`));
    }
    const abort = new AbortController();
    // Loaded when used: the CSR library (node-forge) stays out of the daemon's memory until then.
    const rotation = this.reloads.then(async () => {
      const site = run.loaded.config;
      const { rotateCertificate } = await import('./identity/rotate.js');
      return rotateCertificate({
        gatewayId: site.gateway.id,
        uplink: run.uplink,
        settings: uplinkSettings(site, run.tls),
        paths: { cert: site.uplink.cert, key: site.uplink.key },
        identity: site.identity,
        log: this.opts.log,
        clock: this.clock,
        signal: abort.signal,
        committed: (tls) =>
          (run.tls = { ca: Buffer.from(tls.ca), cert: Buffer.from(tls.cert), key: Buffer.from(tls.key) }),
      });
    });
    this.rotation = { done: rotation.catch(() => undefined), abort };
    void this.rotation.done.then(() => (this.rotation = null));
    return rotation;
  }

  private configStatus(): ConfigStatus | null {
    const run = this.running;
    return run === null ? null : { file: run.loaded.file, loadedAt: run.loadedAt, hash: run.loaded.hash };
  }

  private fatal(err?: unknown): void {
    if (this.opts.onFatal !== undefined) return this.opts.onFatal();
    process.exitCode = Exit.IOERR;
    void this.stop(`fatal ${errorCode(err, 'EDGEGW_E_QUEUE_WRITE')}`).finally(() => process.exit(Exit.IOERR));
  }

  /**
   * Clean stop (DESIGN.md §2.7): polling ends, readings are committed, PUBACKs awaited briefly.
   * `why` (a signal name, a fatal error code) goes to the audit trail.
   */
  stop(why = 'requested'): Promise<void> {
    // A reload under way finishes first (its new groups must not start after the sensors stopped);
    // a rotation gives up and puts the old certificate back (it could wait for replies for long).
    this.rotation?.abort.abort();
    this.stopping ??= this.reloads.then(() => this.stopStages(why));
    return this.stopping;
  }

  /**
   * Reverse of start, one contract for every stage: stop(deadline). Sensors stop polling, the
   * batcher commits what they read, the uplink applies its drain policy until the deadline (live
   * tail, in-flight PUBACKs; a backlog stays queued), the queue closes last.
   */
  private async stopStages(why: string): Promise<void> {
    this.notify?.stopping();
    const deadline = this.clock.monotonic() + (this.opts.drainMs ?? DEFAULT_DRAIN_MS);
    while (this.started.length > 0) {
      const { name, stage } = this.started.pop()!;
      try {
        await stage.stop(deadline);
      } catch (err) {
        this.opts.log.warn({ stage: name, err: errorText(err) }, 'stop failed');
      }
    }
    this.running = null;
    this.opts.log.info('edgegw stopped');
    audit(this.opts.log, 'stop', { why }, 'edgegw stopped');
  }
}

function uplinkSettings(site: SiteConfig, tls: TlsMaterial): UplinkSettings {
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
function configChanges(run: Running, next: LoadedConfig, tls: TlsMaterial): ConfigChange[] {
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

function refused(
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
function errorCode(err: unknown, fallback: string): string {
  return err instanceof EdgegwError ? err.code : fallback;
}

export function errorText(err: unknown): string {
  // Our own messages name seqs, files and counts, never values: more use than the bare code.
  if (err instanceof EdgegwError) return err.message;
  if (err instanceof Error) return (err as NodeJS.ErrnoException).code ?? err.message;
  return String(err);
}

/** prom-client (~7 MiB of RSS) is loaded only by a site that asks for the endpoint. */
async function metricsServer(listen: string, model: StatusModel, log: Logger): Promise<Lifecycle> {
  const { MetricsServer } = await import('./status/metrics.js');
  return new MetricsServer({ listen, model, log });
}
