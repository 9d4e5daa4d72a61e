// Interop: the daemon against a real Mosquitto over TLS with client certificates (not our own
// embedded broker), including a broker restart in the middle of the stream.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { freePort, portOpen } from '../helpers/ports.js';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import mqtt from 'mqtt';
import { loadConfig } from '../../src/config/load.js';
import { Daemon } from '../../src/daemon.js';
import { decodeWire, makeSite, quietLog, waitFor, type TestSite, type WireMessage } from '../helpers/site.js';

describe('interop: Mosquitto over TLS with client certificates', function () {
  this.timeout(60_000);
  let site: TestSite;
  let port: number;
  let conf: string;
  let broker: ChildProcess | null = null;

  const startMosquitto = async () => {
    broker = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    await waitFor(() => portOpen(port), 10_000, 'mosquitto to listen');
  };
  const stopMosquitto = async () => {
    const b = broker;
    broker = null;
    if (b === null || b.exitCode !== null) return;
    await new Promise((r) => {
      b.once('exit', r);
      b.kill('SIGTERM');
    });
  };

  before(async () => {
    site = await makeSite({ sensors: '  - { id: counter-1, sim: { wave: counter }, every: 20ms }' });
    port = await freePort();
    conf = join(site.dir, 'mosquitto.conf');
    const pki = join(site.dir, 'pki');
    // tls_version is a minimum in Mosquitto; `user root` keeps it able to read the 0600 key files.
    await writeFile(
      conf,
      [
        'user root',
        'per_listener_settings false',
        'allow_anonymous true',
        `listener ${port} 127.0.0.1`,
        `cafile ${pki}/ca.pem`,
        `certfile ${pki}/server.pem`,
        `keyfile ${pki}/server.key`,
        'require_certificate true',
        'tls_version tlsv1.2',
        // The subscriber's persistent session survives the restart, so it can check for gaps.
        'persistence true',
        `persistence_location ${site.dir}/`,
        '',
      ].join('\n'),
    );
    await startMosquitto();
  });
  after(async () => {
    await stopMosquitto();
    await site.cleanup();
  });

  it('delivers every seq at least once, across a broker restart', async () => {
    const messages: WireMessage[] = [];
    const subscribe = () => {
      const sub = mqtt.connect(`mqtts://localhost:${port}`, {
        ca: site.pki.caCert,
        cert: site.pki.clientCert,
        key: site.pki.clientKey,
        clientId: 'interop-subscriber',
        clean: false,
        reconnectPeriod: 200,
        rejectUnauthorized: true,
      });
      sub.on('connect', () => sub.subscribe(site.topic, { qos: 1 }));
      sub.on('message', (_t, p) => messages.push(JSON.parse(p.toString('utf8')) as WireMessage));
      return sub;
    };
    const sub = subscribe();
    const loaded = await loadConfig(site.configFile, {
      overrides: { 'uplink.url': `mqtts://localhost:${port}` },
    });
    const daemon = new Daemon({ loaded, log: quietLog() });
    await daemon.start();
    const readings = () => messages.flatMap(decodeWire);
    try {
      await waitFor(() => readings().length >= 30, 20_000, 'readings through mosquitto');
      await stopMosquitto();
      await waitFor(() => daemon.status.snapshot().uplink.state !== 'connected', 10_000, 'the outage seen');
      await startMosquitto();
      const before = readings().length;
      await waitFor(() => readings().length >= before + 30, 30_000, 'readings after the broker restart');
    } finally {
      await daemon.stop();
      sub.end(true);
    }
    const seqs = [...new Set(readings().map((r) => r.seq))].sort((a, b) => a - b);
    const missing = [];
    for (let s = seqs[0]!; s <= seqs.at(-1)!; s++) if (!seqs.includes(s)) missing.push(s);
    assert.equal(seqs[0], 1);
    assert.deepEqual(missing, [], 'every seq reached the subscriber at least once');
    const snap = daemon.status.snapshot();
    assert.equal(snap.counters.delivered + snap.queue.readings, snap.counters.committed);
  });

  it('MQTT 5 with deflate: content type on every message, payloads inflate to the wire JSON, seqs contiguous', async () => {
    const messages: WireMessage[] = [];
    const types = new Set<string>();
    const sub = mqtt.connect(`mqtts://localhost:${port}`, {
      ca: site.pki.caCert,
      cert: site.pki.clientCert,
      key: site.pki.clientKey,
      clientId: 'interop-subscriber-v5',
      protocolVersion: 5,
      reconnectPeriod: 200,
      rejectUnauthorized: true,
    });
    await new Promise<void>((resolve, reject) => {
      sub.once('connect', () => resolve());
      sub.once('error', reject);
    });
    await sub.subscribeAsync(site.topic, { qos: 1 });
    sub.on('message', (_t, p, packet) => {
      types.add(String(packet.properties?.contentType));
      // An independent decoder: node:zlib and JSON.parse, nothing of the gateway's code.
      const json = p[0] === 0x7b ? p : inflateSync(p);
      messages.push(JSON.parse(json.toString('utf8')) as WireMessage);
    });
    const loaded = await loadConfig(site.configFile, {
      overrides: {
        'uplink.url': `mqtts://localhost:${port}`,
        'uplink.protocol': '5',
        'uplink.compression': 'deflate',
      },
    });
    const daemon = new Daemon({ loaded, log: quietLog() });
    await daemon.start();
    const readings = () => messages.flatMap(decodeWire);
    try {
      await waitFor(() => readings().length >= 40, 20_000, 'compressed readings through mosquitto');
      assert.equal(daemon.status.snapshot().uplink.protocol, '5');
    } finally {
      await daemon.stop();
      sub.end(true);
    }
    assert.deepEqual([...types], ['application/zlib'], 'every message says it is compressed');
    const seqs = [...new Set(readings().map((r) => r.seq))].sort((a, b) => a - b);
    for (let i = 1; i < seqs.length; i++) assert.equal(seqs[i], seqs[i - 1]! + 1, 'no seq skipped');
  });
});
