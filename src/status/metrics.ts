// Optional Prometheus endpoint (status.metrics: host:port). Every figure is read from the status
// model at scrape time, into a registry of our own (never prom-client's global one). Counts only:
// sensor readings' values are never exported (DESIGN.md §2.6); sensor ids are fine as labels.
// Names follow Prometheus conventions (checked by test/unit/status/metrics-names.test.ts): the
// `edgegw_` prefix, base units (`_seconds`, `_bytes`), `_total` on counters and only there; rates
// are left to PromQL (`rate(edgegw_uplink_sent_bytes_total[1m])`), the limits are gauges beside them.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { EdgegwError, Exit } from '../errors.js';
import type { Lifecycle } from '../types.js';
import type { StatusModel, StatusSnapshot } from './model.js';

export interface MetricsServerOptions {
  /** host:port, [v6]:port; port 0 picks a free port (tests), see `port`. */
  listen: string;
  model: StatusModel;
  log: Logger;
}

export class MetricsServer implements Lifecycle {
  private readonly opts: MetricsServerOptions;
  private server: Server | null = null;
  private scrape: Scrape | null = null;
  private bound: AddressInfo | null = null;

  constructor(opts: MetricsServerOptions) {
    this.opts = opts;
  }

  /** The port actually bound (useful with port 0); null when not started. */
  get port(): number | null {
    return this.bound?.port ?? null;
  }

  /** The address actually bound; null when not started. */
  get address(): AddressInfo | null {
    return this.bound;
  }

  async start(): Promise<void> {
    if (this.server !== null) return;
    const { host, port } = parseListen(this.opts.listen);
    const scrape = metricsRegistry(this.opts.model);
    const server = createServer((req, res) => {
      this.handle(scrape, req, res).catch((err: unknown) => {
        this.opts.log.warn(
          { err: err instanceof Error ? err.message : String(err) },
          'metrics scrape failed',
        );
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port }, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((err: NodeJS.ErrnoException) => {
      throw new EdgegwError(
        'EDGEGW_E_CONFIG',
        `status.metrics: cannot listen on ${this.opts.listen}: ${err.code ?? err.message}`,
        Exit.CONFIG,
        { cause: err },
      );
    });
    this.server = server;
    this.scrape = scrape;
    this.bound = server.address() as AddressInfo;
    this.opts.log.info({ listen: `${host}:${this.bound.port}` }, 'metrics endpoint listening');
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    this.bound = null;
    if (server === null) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
    this.scrape?.registry.clear();
    this.scrape = null;
  }

  private async handle(
    { registry, refresh }: Scrape,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('edgegw: metrics are at GET /metrics\n');
      return;
    }
    refresh();
    const body = await registry.metrics();
    res.writeHead(200, { 'content-type': registry.contentType });
    res.end(req.method === 'HEAD' ? undefined : body);
  }
}

/** Splits `host:port` / `[v6]:port`; the schema already checked the form, this only guards. */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):([0-9]{1,5})$/.exec(listen);
  const port = Number(m?.[3]);
  const host = m?.[1] ?? m?.[2];
  if (host === undefined || !(port >= 0 && port <= 65535)) {
    throw new EdgegwError(
      'EDGEGW_E_CONFIG',
      `status.metrics: ${JSON.stringify(listen)} is not host:port`,
      Exit.CONFIG,
    );
  }
  return { host, port };
}

export interface Scrape {
  registry: Registry;
  /** Takes a fresh snapshot for the next scrape. */
  refresh: () => void;
}

/** One registry per server; each metric reads the snapshot taken once per scrape. */
export function metricsRegistry(model: StatusModel): Scrape {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // One snapshot per scrape, taken by refresh() and shared by every collector.
  let snap: StatusSnapshot | null = null;
  const current = (): StatusSnapshot => (snap ??= model.snapshot());

  const counter = (name: string, help: string, pick: (s: StatusSnapshot) => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        // Model counters are monotonic since start: mirror the value itself.
        this.reset();
        this.inc(pick(current()));
      },
    });
  const gauge = (name: string, help: string, pick: (s: StatusSnapshot) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(pick(current()));
      },
    });

  counter('edgegw_readings_total', 'Readings taken since start.', (s) => s.counters.readings);
  counter(
    'edgegw_committed_total',
    'Readings committed to the queue since start.',
    (s) => s.counters.committed,
  );
  counter(
    'edgegw_written_total',
    'Readings written to the queue on disk since start (committed minus those acknowledged while held in memory).',
    (s) => s.counters.written,
  );
  counter(
    'edgegw_delivered_total',
    'Readings acknowledged by the broker since start.',
    (s) => s.counters.delivered,
  );
  counter(
    'edgegw_dropped_total',
    'Readings dropped by the full-queue policy since start.',
    (s) => s.counters.dropped,
  );
  counter(
    'edgegw_quarantined_total',
    'Records quarantined as tampered since start.',
    (s) => s.counters.quarantined,
  );
  counter(
    'edgegw_notices_total',
    'Notice records committed since start (each explains seqs the stream will never carry).',
    (s) => s.counters.notices,
  );
  counter('edgegw_messages_total', 'MQTT messages published since start.', (s) => s.counters.messages);
  gauge('edgegw_queue_records', 'Records waiting in the queue.', (s) => s.queue.records);
  gauge('edgegw_queue_readings', 'Readings waiting in the queue.', (s) => s.queue.readings);
  gauge('edgegw_queue_bytes', 'Bytes the queue holds.', (s) => s.queue.bytes);
  gauge('edgegw_queue_notices', 'Notice records waiting in the queue.', (s) => s.queue.notices);
  gauge(
    'edgegw_queue_oldest_age_seconds',
    'Age of the oldest queued reading, the backlog age (0 when empty).',
    (s) => s.queue.ageS ?? 0,
  );
  gauge('edgegw_uplink_connected', '1 while the MQTT session is connected.', (s) =>
    s.uplink.state === 'connected' ? 1 : 0,
  );
  gauge('edgegw_uplink_inflight', 'Publishes awaiting their PUBACK.', (s) => s.uplink.inflight);
  counter(
    'edgegw_uplink_sent_bytes_total',
    'Bytes of MQTT PUBLISH packets sent since start, as the broker quota counts them.',
    (s) => s.uplink.bytesSent,
  );
  counter(
    'edgegw_uplink_reconnects_total',
    'MQTT connections made after the first one since start.',
    (s) => s.uplink.reconnects,
  );
  gauge(
    'edgegw_uplink_pace_ratio',
    'Share of uplink.limits the adaptive pace uses now (1 at the limits; lower while the broker struggles).',
    (s) => s.uplink.pace?.factor ?? NaN,
  );
  counter(
    'edgegw_uplink_refused_publishes_total',
    'Publishes the broker refused as over quota (MQTT 5 PUBACK 0x97) since start; each was sent again.',
    (s) => s.uplink.pace?.refused ?? 0,
  );
  // NaN (not 0) when the daemon does not know: a 0 would read as "no limit" or "expired in 1970".
  gauge(
    'edgegw_uplink_limit_publishes_per_second',
    'uplink.limits.publishesPerSecond: the publish quota the uplink paces itself to.',
    (s) => s.uplink.rates?.limits?.publishesPerSecond ?? NaN,
  );
  gauge(
    'edgegw_uplink_limit_bytes_per_second',
    'uplink.limits.bytesPerSecond: the byte quota the uplink paces itself to.',
    (s) => s.uplink.rates?.limits?.bytesPerSecond ?? NaN,
  );
  gauge(
    'edgegw_certificate_expiry_timestamp_seconds',
    'When the device certificate expires (notAfter), in seconds since the epoch.',
    (s) => (s.certificate === null ? NaN : s.certificate.notAfter / 1000),
  );
  gauge('edgegw_clock_ok', '0 while the wall clock is implausible or not known good yet.', (s) =>
    s.clock.ok ? 1 : 0,
  );
  gauge('edgegw_uptime_seconds', 'Seconds since the daemon started.', (s) => s.uptimeS);

  new Counter({
    name: 'edgegw_sensor_errors_total',
    help: 'Failed sensor reads since start.',
    labelNames: ['sensor'],
    registers: [registry],
    collect() {
      this.reset();
      for (const x of current().sensors) this.labels(x.id).inc(x.errors);
    },
  });
  new Counter({
    name: 'edgegw_overrun_skipped_total',
    help: 'Polls skipped because a bus or sensor fell behind, since start.',
    labelNames: ['scope'],
    registers: [registry],
    collect() {
      this.reset();
      for (const o of current().overruns) this.labels(o.scope).inc(o.skipped);
    },
  });
  return {
    registry,
    refresh: () => {
      snap = model.snapshot();
    },
  };
}
