// The composition root: the only module that knows every stage. It wires
// sensors → batcher → seal → queue → uplink (DESIGN.md §1), owns the lifecycle, and tells systemd.

import type { Logger } from 'pino';
import type { LoadedConfig } from './config/load.js';
import { assertPrivateFile } from './seal/keyfile.js';
import { Keyring } from './seal/keyring.js';
import { SealedQueue } from './queue/sealed-queue.js';
import { QueueRecordSource } from './queue/record-source.js';
import { Batcher } from './queue/batcher.js';
import { Uplink } from './uplink/uplink.js';
import { loadTlsFiles } from './uplink/tls-files.js';
import { StatusModel } from './status/model.js';
import { StatusServer } from './status/server.js';
import { MetricsServer } from './status/metrics.js';
import { SdNotify } from './status/sd-notify.js';
import { ProgressMonitor, type ProgressProbe } from './status/progress.js';
import { statusLine } from './status/status-line.js';
import { createSensorGroups } from './sensors/acquisition.js';
import { BUILD_TIME, TimestampGuard } from './sensors/timestamps.js';
import { systemClock, type Clock, type Lifecycle, type Reading, type SensorObserver } from './types.js';
import { VERSION } from './version.js';
import { EdgegwError, Exit } from './errors.js';

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
}

export class Daemon {
  private readonly opts: DaemonOptions;
  private readonly clock: Clock;
  private started: { name: string; stage: Lifecycle }[] = [];
  private model: StatusModel | null = null;
  private stopping: Promise<void> | null = null;

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
    const { config: site } = this.opts.loaded;
    const log = this.opts.log;

    // Refuse insecure key files before touching disk or network (exit 77).
    await assertPrivateFile(site.uplink.key, 'uplink.key');
    const keyring = await Keyring.load(site.queue.keyFile, site.queue.previousKeyFiles);
    const tls = await loadTlsFiles(site.uplink);

    const queue = new SealedQueue({
      dir: site.gateway.dataDir,
      maxBytes: site.queue.maxBytes,
      whenFull: site.queue.whenFull,
      durability: site.queue.durability,
      seal: (seq, readings) => keyring.seal(seq, readings),
      log: log.child({ stage: 'queue' }),
      minFreeBytes: site.queue.minFreeBytes,
      // Nothing the queue can do keeps more data: exit non-zero so systemd restarts the daemon.
      onFatal: () => this.fatal(),
      // A start whose keys cannot open every stored record is refused (EDGEGW_E_QUEUE_KEY).
      keys: { current: keyring.currentId, files: keyring.files(), identify: (rec) => keyring.identify(rec) },
    });

    let uplink: Uplink | null = null;
    const guard = new TimestampGuard({ clock: this.clock, buildTime: BUILD_TIME, log });
    const model = new StatusModel({
      gateway: site.gateway.id,
      version: VERSION,
      clock: this.clock,
      uplink: () =>
        uplink?.state() ?? { state: 'offline', broker: '', since: 0, inflight: 0, lastError: null },
      queue: () => queue.stats(),
      queueCounters: () => queue.sinceStart(),
      clockIssue: () => guard.clockIssue(),
    });
    model.registerSensors(site.sensors.map((s) => s.id));
    this.model = model;

    // The queue counts what it committed, dropped, lost and quarantined (status reads it there).
    const batcher = new Batcher({
      flushMs: site.queue.flush,
      maxReadings: site.queue.maxRecordReadings,
      clock: this.clock,
      commit: (readings) => queue.append(readings),
      onError: (err) =>
        log.error({ code: errorCode(err, 'EDGEGW_E_QUEUE_WRITE'), err: errorText(err) }, 'commit failed'),
    });

    const source = new QueueRecordSource(
      queue,
      (rec) => keyring.open(rec, queue.sealedBy(rec.seq)),
      () => undefined,
    );
    uplink = new Uplink({
      gatewayId: site.gateway.id,
      url: site.uplink.url,
      ...(site.uplink.alpn === undefined ? {} : { alpn: site.uplink.alpn }),
      topic: site.uplink.topic,
      keepaliveMs: site.uplink.keepalive,
      ackTimeoutMs: site.uplink.ackTimeout,
      limits: site.uplink.limits,
      backoff: { minMs: site.uplink.backoff.min, maxMs: site.uplink.backoff.max },
      tls,
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
    const groups = createSensorGroups({
      site,
      profile: this.opts.loaded.profile,
      observer: guard.wrap(fanout),
      clock: this.clock,
      log: log.child({ stage: 'sensors' }),
    });

    // The watchdog pings only while every stage makes progress (src/status/progress.ts).
    const probes: ProgressProbe[] = [
      { name: 'batcher', progress: () => batcher.progress() },
      { name: 'uplink', progress: () => uplink.progress() },
      ...groups.map((g) => ({ name: `sensors ${g.sensorIds.join(',')}`, progress: () => g.progress() })),
    ];
    const notify = new SdNotify({
      log: log.child({ stage: 'sd-notify' }),
      health: new ProgressMonitor({ clock: this.clock, probes: () => probes }),
      statusText: () => statusLine(model.snapshot(), this.clock.now()),
    });
    const stages: { name: string; stage: Lifecycle }[] = [
      { name: 'queue', stage: queue },
      { name: 'status', stage: new StatusServer({ socketPath: site.status.socket, model, log }) },
      ...(site.status.metrics === undefined
        ? []
        : [{ name: 'metrics', stage: new MetricsServer({ listen: site.status.metrics, model, log }) }]),
      { name: 'uplink', stage: uplink },
      { name: 'batcher', stage: batcher },
      ...groups.map((g) => ({ name: `sensors ${g.sensorIds.join(',')}`, stage: g })),
      { name: 'sd-notify', stage: notify },
    ];
    try {
      for (const s of stages) {
        await s.stage.start();
        this.started.push(s);
      }
    } catch (err) {
      await this.stopStages();
      throw err;
    }
    notify.ready(notify.statusNow() ?? `${site.sensors.length} sensors`);
    log.info({ sensors: site.sensors.length, version: VERSION }, 'edgegw started');
  }

  private fatal(): void {
    if (this.opts.onFatal !== undefined) return this.opts.onFatal();
    process.exitCode = Exit.IOERR;
    void this.stop().finally(() => process.exit(Exit.IOERR));
  }

  /** Clean stop (DESIGN.md §2.7): polling ends, readings are committed, PUBACKs awaited briefly. */
  stop(): Promise<void> {
    this.stopping ??= this.stopStages();
    return this.stopping;
  }

  private async stopStages(): Promise<void> {
    const notify = this.started.find((s) => s.name === 'sd-notify')?.stage;
    if (notify instanceof SdNotify) notify.stopping();
    // Reverse of start: sensors stop polling, the batcher commits what they read, the uplink
    // waits (bounded) for in-flight PUBACKs, the queue closes last.
    while (this.started.length > 0) {
      const { name, stage } = this.started.pop()!;
      try {
        if (stage instanceof Uplink) await this.drain(stage);
        else await stage.stop();
      } catch (err) {
        this.opts.log.warn({ stage: name, err: errorText(err) }, 'stop failed');
      }
    }
    this.opts.log.info('edgegw stopped');
  }

  /**
   * DESIGN.md §2.7: the sensors have stopped and the batcher committed what they read; the uplink
   * stops pulling at once and waits (bounded by drainMs) only for the PUBACKs of what is already in
   * flight; a backlog simply stays queued for the next start. Waiting for the queue to empty first
   * made a stop with a backlog last the whole window and left in-flight PUBACKs no time at all.
   */
  private async drain(uplink: Uplink): Promise<void> {
    await uplink.stop(this.opts.drainMs ?? 5000);
  }
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
