import assert from 'node:assert/strict';
import { request } from 'node:http';
import { pino } from 'pino';
import { EdgegwError } from '../../../src/errors.js';
import { MetricsServer, parseListen } from '../../../src/status/metrics.js';
import { fixture, T0 } from './support.js';

const silent = pino({ level: 'silent' });

function get(
  port: number,
  path: string,
  method = 'GET',
): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

/** The sample value of a metric line such as `name{labels} 12`. */
function sample(body: string, series: string): number {
  const line = body.split('\n').find((l) => l.startsWith(`${series} `));
  assert.ok(line !== undefined, `${series} missing in\n${body}`);
  return Number(line.slice(series.length + 1));
}

describe('MetricsServer', () => {
  const servers: MetricsServer[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.stop();
  });

  async function started() {
    const f = fixture();
    f.model.registerSensors(['boiler-temp', 'door-1']);
    const server = new MetricsServer({ listen: '127.0.0.1:0', model: f.model, log: silent });
    servers.push(server);
    await server.start();
    assert.ok(server.port !== null && server.port > 0);
    return { ...f, server, port: server.port };
  }

  it('serves counters, queue and uplink gauges from the model over HTTP', async () => {
    const { model, port } = await started();
    model.reading({ sensor: 'boiler-temp', ts: T0, value: 21.5, quality: 'good' });
    model.reading({ sensor: 'door-1', ts: T0, value: true, quality: 'good' });
    model.committed(2);
    model.delivered(1);
    model.dropped(4);
    model.quarantined();
    model.message();
    model.error('door-1', 'EDGEGW_E_GPIO', 'gone');
    model.error('door-1', 'EDGEGW_E_GPIO', 'gone');
    model.overrun('rs485-1', 3);

    const r = await get(port, '/metrics');
    assert.equal(r.status, 200);
    assert.match(r.type, /^text\/plain/);
    assert.equal(sample(r.body, 'edgegw_readings_total'), 2);
    assert.equal(sample(r.body, 'edgegw_committed_total'), 2);
    assert.equal(sample(r.body, 'edgegw_written_total'), 2);
    assert.equal(sample(r.body, 'edgegw_delivered_total'), 1);
    assert.equal(sample(r.body, 'edgegw_dropped_total'), 4);
    assert.equal(sample(r.body, 'edgegw_quarantined_total'), 1);
    assert.equal(sample(r.body, 'edgegw_messages_total'), 1);
    assert.equal(sample(r.body, 'edgegw_queue_records'), 2);
    assert.equal(sample(r.body, 'edgegw_queue_bytes'), 1234);
    assert.ok(sample(r.body, 'edgegw_queue_oldest_age_seconds') > 0);
    assert.equal(sample(r.body, 'edgegw_uplink_connected'), 1);
    assert.equal(sample(r.body, 'edgegw_uplink_inflight'), 3);
    assert.equal(sample(r.body, 'edgegw_sensor_errors_total{sensor="door-1"}'), 2);
    assert.equal(sample(r.body, 'edgegw_sensor_errors_total{sensor="boiler-temp"}'), 0);
    assert.equal(sample(r.body, 'edgegw_overrun_skipped_total{scope="rs485-1"}'), 3);
    assert.match(r.body, /# TYPE edgegw_readings_total counter/);
    assert.match(r.body, /# TYPE edgegw_queue_records gauge/);
    // Default process metrics, in our own registry.
    assert.match(r.body, /^process_cpu_user_seconds_total /m);
    assert.match(r.body, /^nodejs_heap_size_used_bytes /m);
  });

  it('follows the model from scrape to scrape without double counting', async () => {
    const { model, uplink, queue, port } = await started();
    model.committed(5);
    assert.equal(sample((await get(port, '/metrics')).body, 'edgegw_committed_total'), 5);
    model.committed(3);
    uplink.state = 'backoff';
    queue.oldestTs = null;
    const body = (await get(port, '/metrics')).body;
    assert.equal(sample(body, 'edgegw_committed_total'), 8);
    assert.equal(sample(body, 'edgegw_uplink_connected'), 0);
    assert.equal(sample(body, 'edgegw_queue_oldest_age_seconds'), 0);
    assert.equal(sample((await get(port, '/metrics')).body, 'edgegw_committed_total'), 8);
  });

  it('serves bytes sent, reconnects, the limits and the certificate expiry from the uplink', async () => {
    const { uplink, port } = await started();
    const notAfter = Date.UTC(2027, 5, 1);
    let body = (await get(port, '/metrics')).body;
    // Unknown is NaN, never 0 ("no limit", "expired in 1970").
    assert.ok(Number.isNaN(sample(body, 'edgegw_certificate_expiry_timestamp_seconds')));
    assert.ok(Number.isNaN(sample(body, 'edgegw_uplink_limit_bytes_per_second')));
    Object.assign(uplink, {
      throughput: {
        publishesTotal: 40,
        bytesTotal: 123_456,
        reconnects: 2,
        publishesPerSecond: 4,
        bytesPerSecond: 12_000,
        windowS: 10,
      },
      limits: { publishesPerSecond: 100, bytesPerSecond: 524_288 },
      certificate: { subject: 'CN=gw', notBefore: 0, notAfter, daysLeft: 500, state: 'valid' },
    });
    body = (await get(port, '/metrics')).body;
    assert.equal(sample(body, 'edgegw_uplink_sent_bytes_total'), 123_456);
    assert.equal(sample(body, 'edgegw_uplink_reconnects_total'), 2);
    assert.equal(sample(body, 'edgegw_uplink_limit_publishes_per_second'), 100);
    assert.equal(sample(body, 'edgegw_uplink_limit_bytes_per_second'), 524_288);
    assert.equal(sample(body, 'edgegw_certificate_expiry_timestamp_seconds'), notAfter / 1000);
    assert.match(body, /# TYPE edgegw_uplink_sent_bytes_total counter/);
  });

  it('never exports reading values (guarantee 6)', async () => {
    const { model, port } = await started();
    model.reading({ sensor: 'boiler-temp', ts: T0, value: 73_451.987_65, quality: 'good' });
    model.reading({ sensor: 'door-1', ts: T0, value: -0.000_731_9, quality: 'bad' });
    const body = (await get(port, '/metrics')).body;
    assert.equal(sample(body, 'edgegw_readings_total'), 2, 'the readings were seen');
    // Anywhere, in any notation a serializer might use:
    assert.ok(!body.includes('73451.98765') && !body.includes('7.345198765e'), body);
    assert.ok(!body.includes('0.0007319') && !body.includes('7.319e-4'), body);
    // and in our own series' names and labels not even a fragment (sample values such as times and
    // process figures may hold any digits; the whole-value checks above cover them).
    const ours = body.split('\n').filter((l) => l.startsWith('edgegw_'));
    assert.ok(ours.length > 10);
    for (const line of ours) {
      assert.doesNotMatch(line.replace(/ \S+$/, ''), /73451|98765|7319|quality|value/, line);
    }
  });

  it('answers 404 elsewhere and HEAD without a body', async () => {
    const { port } = await started();
    assert.equal((await get(port, '/')).status, 404);
    assert.equal((await get(port, '/metrics', 'POST')).status, 404);
    const head = await get(port, '/metrics', 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
  });

  it('keeps a registry of its own: two servers side by side, restart after stop', async () => {
    const a = await started();
    const b = await started();
    a.model.committed(1);
    b.model.committed(7);
    assert.equal(sample((await get(a.port, '/metrics')).body, 'edgegw_committed_total'), 1);
    assert.equal(sample((await get(b.port, '/metrics')).body, 'edgegw_committed_total'), 7);
    await a.server.stop();
    await assert.rejects(get(a.port, '/metrics'), { code: 'ECONNREFUSED' });
    await a.server.start();
    assert.equal(sample((await get(a.server.port!, '/metrics')).body, 'edgegw_committed_total'), 1);
  });

  it('binds only the configured host', async () => {
    const { server } = await started();
    assert.equal(server.address?.address, '127.0.0.1');
  });

  it('a port in use is a clear configuration error', async () => {
    const { port } = await started();
    const clash = new MetricsServer({ listen: `127.0.0.1:${port}`, model: fixture().model, log: silent });
    await assert.rejects(clash.start(), (err: unknown) => {
      assert.ok(err instanceof EdgegwError);
      assert.equal(err.code, 'EDGEGW_E_CONFIG');
      assert.match(
        err.message,
        new RegExp(`status\\.metrics: cannot listen on 127\\.0\\.0\\.1:${port}: EADDRINUSE`),
      );
      return true;
    });
  });

  it('parses host:port and [v6]:port', () => {
    assert.deepEqual(parseListen('127.0.0.1:9464'), { host: '127.0.0.1', port: 9464 });
    assert.deepEqual(parseListen('[::1]:0'), { host: '::1', port: 0 });
    assert.deepEqual(parseListen('gw.local:80'), { host: 'gw.local', port: 80 });
    for (const bad of ['9464', '127.0.0.1', '127.0.0.1:99999', ':9464', 'a b:1']) {
      assert.throws(() => parseListen(bad), { code: 'EDGEGW_E_CONFIG' }, bad);
    }
  });
});
