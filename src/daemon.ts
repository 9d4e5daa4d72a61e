// The composition root: the only module that knows every stage. It wires
// sensors → batcher → seal → queue → uplink (DESIGN.md §1), owns the lifecycle, applies reloads
// (operations issue), and tells systemd.

import type { Logger } from 'pino';
import { ConfigError, formatIssue, loadConfig, type LoadedConfig } from './config/load.js';
import { describeChange, planReload } from './config/diff.js';
import { assertPrivateFile } from './seal/keyfile.js';
import { openedForm } from './seal/sealer.js';
import { loadQueueKeyring } from './seal/rotated-keys.js';
import { QueueKeyRotation, queueKeysOf } from './queue-key-rotation.js';
import { SealedQueue } from './queue/sealed-queue.js';
import { QueueRecordSource } from './queue/record-source.js';
import { Batcher } from './queue/batcher.js';
import { DEFAULT_DRAIN_MS, Uplink } from './uplink/uplink.js';
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
import {
  applyLive,
  configChanges,
  errorCode,
  errorText,
  refused,
  uplinkSettings,
  type Running,
} from './reload-apply.js';
import { bootOverlay, Fleet } from './fleet/fleet.js';
import type { Overlay } from './fleet/settable.js';
import { JobFailure, type Operation } from './fleet/operations.js';

export { errorText };

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
  /**
   * How a reload reads the configuration again, with the remote overlay (fleet.shadow) set over
   * the file; default: the loader, on the same file, with the overlay as its overrides.
   */
  load?: (overlay: Overlay) => Promise<LoadedConfig>;
  /**
   * Job operations (fleet.jobs) beyond the built-in ones of src/fleet/operations.ts: the identity
   * work's `rotate-certificate` is passed in here.
   */
  jobOperations?: Record<string, Operation>;
  /** The clock sync's inputs (tests): sync source, boot id, ms since boot (clock-wiring.ts). */
  clockSync?: ClockInputs;
}

export class Daemon {
  private readonly opts: DaemonOptions;
  private readonly clock: Clock;
  private started: { name: string; stage: Lifecycle }[] = [];
  private model: StatusModel | null = null;
  private notify: SdNotify | null = null;
  private fleet: Fleet | null = null;
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
    const log = this.opts.log;
    // The queue keys come from the site file (no queue key setting is settable remotely); they
    // also open the remote overlay fleet.shadow stored, which applies from the start, even with no
    // broker in reach.
    const keyring = await loadQueueKeyring(this.opts.loaded.config.queue);
    const boot = await bootOverlay(
      this.opts.loaded,
      (o) => this.load(this.opts.loaded.file, o),
      () => Promise.resolve(keyring),
      log,
    );
    const loaded = boot.loaded;
    const site = loaded.config;

    // A rotation or provision cut by a crash is settled before the TLS files are read.
    const identity = { cert: site.uplink.cert, key: site.uplink.key };
    await settleIdentity(identity, log);
    // Refuse insecure key files before touching disk or network (exit 77).
    await assertPrivateFile(site.uplink.key, 'uplink.key');
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
      keys: queueKeysOf(keyring),
      // An old key's records all delivered: its rotated key file is retired.
      keysRetired: (ids) => queueKeys.retired(ids),
    });
    // The rotate-queue-key job, live (queue-key-rotation.ts); the site file's keys apply from a start.
    const queueKeys = new QueueKeyRotation({
      keyring,
      queue,
      site: () => this.running?.loaded.config ?? site,
      log: log.child({ stage: 'queue' }),
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
      queue: () => ({ ...queue.stats(), keys: queue.keyStatus() }),
      queueCounters: () => queue.sinceStart(),
      clockIssue: () => clock.clockIssue(),
      clockSync: () => clock.status(),
      config: () => this.configStatus(),
      fleet: () => this.fleet?.status() ?? null,
    });
    model.registerSensors(site.sensors.map((s) => s.id));
    this.model = model;

    // The queue counts what it committed, dropped, lost and quarantined (status reads it there).
    const batcher = new Batcher({
      flushMs: site.queue.flush,
      maxReadings: site.queue.maxRecordReadings,
      clock: this.clock,
      commit: (readings, durableBy) => clock.commit(readings, durableBy),
      // Not connected, every record is synced at once: batches wait up to 2 × flush (fewer commits).
      offline: () => (uplink?.writeBehindRoom() ?? 0) === 0,
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
        // The key ranges are settled: rotated keys no stored record needs are retired.
        if (s.stage === queue) await queueKeys.retireUnused();
      }
    } catch (err) {
      await this.stopStages('start failed');
      throw err;
    }
    // Only now may a reload change the stages (a SIGHUP during the start is refused).
    const run: Running = {
      loaded,
      loadedAt: this.clock.now(),
      overlay: boot.overlay,
      tls,
      queue,
      batcher,
      uplink,
      sensors,
      model,
    };
    this.running = run;
    // The fleet acts through the reload path, so it starts once a reload may run.
    const fleet = new Fleet({
      loaded: () => run.loaded,
      overlay: () => run.overlay,
      stored: boot.stored,
      storedRefused: boot.refused,
      keys: keyring,
      control: uplink.control,
      clock: this.clock,
      log,
      version: VERSION,
      snapshot: () => model.snapshot(),
      apply: (overlay) => this.reload(overlay),
      reload: () => this.reload(),
      rotateQueueKey: () => queueKeys.rotate(),
      operations: {
        // The identity work's rotation, on the live connection; a failure (rolled back) is FAILED.
        'rotate-certificate': async () => {
          try {
            return await this.rotateCertificate();
          } catch (err) {
            throw new JobFailure(errorText(err));
          }
        },
        ...this.opts.jobOperations,
      },
    });
    try {
      await fleet.start();
      this.fleet = fleet;
      this.started.push({ name: 'fleet', stage: fleet });
    } catch (err) {
      await this.stopStages('start failed');
      throw err;
    }
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
   * of it (invalid, or a key only a restart can apply) and keeps the running one. A remote change
   * (fleet.shadow) comes the same way with its `overlay`; a file change keeps the running overlay.
   */
  reload(overlay?: Overlay): Promise<ReloadOutcome> {
    const next = this.reloads.then(() => this.rotation?.done).then(() => this.reloadOnce(overlay));
    this.reloads = next.catch(() => undefined);
    return next;
  }

  private load(file: string, overlay: Overlay): Promise<LoadedConfig> {
    return this.opts.load !== undefined
      ? this.opts.load(overlay)
      : loadConfig(file, { overrides: { ...overlay }, keyModes: true });
  }

  private async reloadOnce(wanted?: Overlay): Promise<ReloadOutcome> {
    const run = this.running;
    const log = this.opts.log;
    if (run === null || this.stopping !== null) {
      return refused(run, [], [], 'the daemon is not running (starting or stopping)');
    }
    const overlay = wanted ?? run.overlay;
    let next: LoadedConfig;
    let tls: TlsMaterial;
    try {
      next = await this.load(run.loaded.file, overlay);
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

    await applyLive(run, plan, next, tls, log);
    Object.assign(run, { loaded: next, loadedAt: this.clock.now(), tls, overlay });

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

/** prom-client (~7 MiB of RSS) is loaded only by a site that asks for the endpoint. */
async function metricsServer(listen: string, model: StatusModel, log: Logger): Promise<Lifecycle> {
  const { MetricsServer } = await import('./status/metrics.js');
  return new MetricsServer({ listen, model, log });
}
