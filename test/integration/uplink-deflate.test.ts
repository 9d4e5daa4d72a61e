// Compressed messages (uplink.compression: deflate, issue 8) over a real TLS broker: a backlog
// drains in zlib payloads, each decoded here with node:zlib + JSON.parse alone (independent of the
// packer); a reload switches compression without sending a record twice; and `edgegw run` with
// the config key publishes compressed messages whose readings arrive contiguous.

import assert from 'node:assert/strict';
import { inflateSync } from 'node:zlib';
import { createDemoPki, type DemoPki } from '../../src/demo/pki.js';
import { startTlsBroker, type TlsBroker } from '../../src/demo/broker.js';
import type { Uplink, UplinkSettings } from '../../src/uplink/uplink.js';
import { runCli, startCli } from '../helpers/cli.js';
import {
  decodeWire,
  deliveredPast,
  makeSite,
  waitFor,
  type TestSite,
  type WireMessage,
} from '../helpers/site.js';
import { MemorySource } from '../unit/uplink/memory-source.js';
import { GW, makeUplink } from './uplink-support.js';

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

interface Received {
  compressed: boolean;
  bytes: number;
  msg: WireMessage;
}

/** The shared framing: `{` is plain JSON, a valid zlib header is compressed, anything else refused. */
function decodePayload(p: Buffer): Received {
  if (p[0] === 0x7b)
    return { compressed: false, bytes: p.length, msg: JSON.parse(p.toString()) as WireMessage };
  assert.ok(p.length >= 2 && (p[0]! & 0x0f) === 8 && (p[0]! * 256 + p[1]!) % 31 === 0, 'a zlib header');
  return { compressed: true, bytes: p.length, msg: JSON.parse(inflateSync(p).toString()) as WireMessage };
}

function record(broker: TlsBroker, into: Received[]): void {
  broker.aedes.on('publish', (packet, client) => {
    if (client?.id === GW) into.push(decodePayload(Buffer.from(packet.payload)));
  });
}

describe('compressed messages over TLS (uplink.compression: deflate)', function () {
  this.timeout(60_000);
  let pki: DemoPki;
  let broker: TlsBroker | null = null;
  let uplink: Uplink | null = null;

  before(() => {
    pki = createDemoPki(GW);
  });
  afterEach(async () => {
    await uplink?.stop(0);
    uplink = null;
    await broker?.close();
    broker = null;
  });

  it('drains a backlog in zlib payloads within the size limit; every reading decodes, seqs contiguous', async () => {
    broker = await startTlsBroker({ pki });
    const got: Received[] = [];
    record(broker, got);
    const source = new MemorySource();
    source.append(600, 20);
    uplink = makeUplink(broker, pki, source, { compression: 'deflate' });
    await uplink.start();
    await waitFor(() => source.records.size === 0, 30_000, 'the backlog drained');
    assert.ok(got.length > 0);
    for (const m of got) {
      assert.equal(m.compressed, true, 'every message compressed');
      assert.ok(m.bytes <= 4096, `${m.bytes} B > maxPayloadBytes`);
    }
    assert.ok(
      got.some((m) => m.msg.recs.length > 4096 / (20 * 15)),
      'more records per message than plain JSON could hold',
    );
    const readings = got.flatMap((m) => decodeWire(m.msg));
    assert.deepEqual(
      [...new Set(readings.map((r) => r.seq))].sort((a, b) => a - b),
      range(600),
    );
    for (const r of readings) assert.equal(r.value, r.seq * 1000 + Number(r.sensor.slice(1)), 'value');
    for (const m of got) {
      const seqs = m.msg.recs.map((r) => r.seq);
      assert.deepEqual(
        seqs,
        [...seqs].sort((a, b) => a - b),
        'seq order within a message',
      );
    }
  });

  it('a reload to deflate repacks what is packed and unsent: no record twice, compressed from then on', async () => {
    broker = await startTlsBroker({ pki });
    const got: Received[] = [];
    record(broker, got);
    const source = new MemorySource();
    source.append(400, 20);
    uplink = makeUplink(broker, pki, source);
    broker.pauseAcks(); // a full window in flight, messages packed behind it, when the reload comes
    await uplink.start();
    await waitFor(() => uplink!.state().inflight === 8, 10_000, 'a full window');
    await waitFor(() => got.length === 8, 10_000, 'the window at the broker');
    const before = got.length;
    const next: UplinkSettings = {
      url: broker.url,
      topic: 'dt/edgegw/{gateway}/telemetry',
      keepaliveMs: 30_000,
      limits: {
        publishesPerSecond: 10_000,
        bytesPerSecond: 100 * 1024 * 1024,
        maxPayloadBytes: 4096,
        inflight: 8,
      },
      compression: 'deflate',
      backoff: { minMs: 50, maxMs: 300 },
      tls: {
        ca: Buffer.from(pki.caCert),
        cert: Buffer.from(pki.clientCert),
        key: Buffer.from(pki.clientKey),
      },
    };
    assert.equal(uplink.reconfigure(next).reconnected, false);
    broker.resumeAcks();
    await waitFor(() => source.records.size === 0, 20_000, 'all records acked');
    const seqs = got.flatMap((m) => m.msg.recs.map((r) => r.seq));
    assert.deepEqual(
      [...seqs].sort((a, b) => a - b),
      range(400),
      'every record once, none twice',
    );
    assert.ok(
      got.slice(0, before).every((m) => !m.compressed),
      'published before the reload: plain',
    );
    assert.ok(got.length > before && got.slice(before).every((m) => m.compressed), 'after it: compressed');
  });

  describe('edgegw run with uplink.compression: deflate (child process)', () => {
    let site: TestSite | null = null;
    afterEach(async () => {
      await site?.cleanup();
      site = null;
    });

    it('publishes compressed messages; a backlog drains and every counter reading arrives, in seq order', async () => {
      site = await makeSite({
        extraUplink: '  compression: deflate',
        sensors: '  - { id: counter-1, sim: { wave: counter }, every: 10ms }',
      });
      const got: Received[] = [];
      const unsubscribe = await site.broker.subscribe(site.topic, (p: Buffer) => got.push(decodePayload(p)));
      site.broker.pauseAcks(); // a backlog builds on disk behind a full in-flight window
      const { child, done } = startCli(['run', '-c', site.configFile]);
      await waitFor(() => site!.broker.published.maxOutstanding >= 16, 20_000, 'a full in-flight window');
      await waitFor(() => got.length >= 16, 10_000, 'the window at the subscriber');
      await waitFor(
        async () => {
          const st = await runCli(['status', '--json', '-c', site!.configFile]);
          return (
            st.code === 0 && (JSON.parse(st.stdout) as { queue: { records: number } }).queue.records >= 60
          );
        },
        20_000,
        'a backlog of records queued on disk',
        200,
      );
      const top = Math.max(...got.flatMap((m) => m.msg.recs.map((r) => r.seq)));
      site.broker.resumeAcks();
      // Past the window, and every seq below the newest: live records go out ahead of the backlog.
      await waitFor(
        () =>
          deliveredPast(
            got.map((m) => m.msg),
            top + 3,
          ),
        30_000,
        'the backlog drained',
      );
      child.kill('SIGTERM');
      const r = await done;
      assert.equal(r.code, 0, r.stderr);
      await unsubscribe();
      assert.ok(
        got.every((m) => m.compressed),
        'every message compressed',
      );
      const readings = got.flatMap((m) => decodeWire(m.msg));
      const seqs = [...new Set(readings.map((x) => x.seq))].sort((a, b) => a - b);
      assert.deepEqual(seqs, range(seqs.at(-1)!), 'contiguous seqs from 1');
      // In seq order: live records may arrive ahead of the backlog, so arrival order is not the counter's.
      const inSeqOrder = [...readings].sort((a, b) => a.seq - b.seq || a.ts - b.ts);
      const values = [...new Map(inSeqOrder.map((x) => [`${x.seq}/${x.ts}`, x.value])).values()];
      assert.deepEqual(
        values,
        range(values.length).map((i) => i - 1),
        'counter 0, 1, 2, … none missing',
      );
      assert.ok(
        got.some((m) => m.msg.recs.length > 10),
        'a backlog message holds many records',
      );
    });
  });
});
