// Every edgegw metric follows the Prometheus naming conventions, and the README's metrics table
// lists exactly the metrics the endpoint serves.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { metricsRegistry } from '../../../src/status/metrics.js';
import { fixture } from './support.js';

/** Units that are not base units: Prometheus wants seconds and bytes. */
const NOT_BASE_UNITS =
  /_(ms|milliseconds|us|microseconds|minutes|hours|days|kb|kib|mb|mib|gb|gib|percent|kilobytes|megabytes)(_|$)/;

async function ours(): Promise<{ name: string; type: string; help: string }[]> {
  const { model } = fixture();
  model.registerSensors(['a']);
  const { registry, refresh } = metricsRegistry(model);
  refresh();
  const all = await registry.getMetricsAsJSON();
  return all
    .filter((m) => !m.name.startsWith('process_') && !m.name.startsWith('nodejs_'))
    .map((m) => ({ name: m.name, type: String(m.type), help: m.help }));
}

describe('metrics names', () => {
  it('every metric follows the Prometheus conventions', async () => {
    const metrics = await ours();
    assert.ok(metrics.length >= 20, `${metrics.length} metrics`);
    for (const { name, type, help } of metrics) {
      assert.match(name, /^edgegw_[a-z][a-z0-9_]*[a-z0-9]$/, `${name}: edgegw_ prefix, snake_case`);
      assert.doesNotMatch(name, /__/, name);
      assert.doesNotMatch(name, NOT_BASE_UNITS, `${name}: base units (seconds, bytes)`);
      if (type === 'counter') assert.match(name, /_total$/, `${name}: a counter ends in _total`);
      else assert.doesNotMatch(name, /_total$/, `${name}: only counters end in _total`);
      const words = name.split('_');
      if (['age', 'uptime', 'duration', 'timestamp', 'expiry'].some((w) => words.includes(w)))
        assert.match(name, /_seconds(_total)?$/, `${name}: a time is in _seconds`);
      if (words.includes('bytes'))
        assert.match(name, /_bytes(_total|_per_second)?$/, `${name}: sizes in _bytes`);
      assert.ok(help.length > 10 && help.endsWith('.'), `${name}: a help sentence`);
    }
  });

  it('has the publish and byte counters, the limits, reconnects, certificate expiry and backlog age', async () => {
    const names = new Set((await ours()).map((m) => m.name));
    for (const n of [
      'edgegw_messages_total',
      'edgegw_uplink_sent_bytes_total',
      'edgegw_uplink_limit_publishes_per_second',
      'edgegw_uplink_limit_bytes_per_second',
      'edgegw_uplink_reconnects_total',
      'edgegw_certificate_expiry_timestamp_seconds',
      'edgegw_queue_oldest_age_seconds',
    ])
      assert.ok(names.has(n), n);
  });

  it('the README metrics table lists exactly these, with their types', async () => {
    const readme = readFileSync(new URL('../../../../README.md', import.meta.url), 'utf8');
    const start = readme.indexOf('### Metrics');
    assert.ok(start > 0, 'README has a Metrics section');
    const section = readme.slice(start, readme.indexOf('\n#', start + 1));
    const rows = new Map(
      [...section.matchAll(/^\| `(edgegw_[a-z0-9_]+)` +\| (counter|gauge) +\|/gm)].map((m) => [m[1]!, m[2]!]),
    );
    const metrics = await ours();
    assert.deepEqual(
      [...rows.keys()].sort(),
      metrics.map((m) => m.name).sort(),
      'README rows vs served metrics',
    );
    for (const m of metrics) assert.equal(rows.get(m.name), m.type, m.name);
  });
});
