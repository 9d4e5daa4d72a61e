// The consumer on payloads a real daemon published to the real TLS test broker: `edgegw decode`
// (a child process) on captured files and stdin, and the Lambda handlers on IoT Rule and Kinesis
// events built from those payloads the way AWS delivers them.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { BIN, runCli, startCli, type CliResult } from '../helpers/cli.js';
import { decodeWire, subscribedSite, waitFor, type WireMessage } from '../helpers/site.js';
import { createIotRuleHandler, createKinesisHandler, type KinesisEvent } from '../../src/consumer/lambda.js';
import type { Notice, Row } from '../../src/consumer/decode.js';

const b64 = (b: Buffer) => b.toString('base64');

function rowsOf(payloads: Buffer[]): Row[] {
  return payloads.flatMap((p) =>
    decodeWire(JSON.parse(p.toString('utf8')) as WireMessage).map((r) => ({
      gw: 'test-gw1',
      seq: r.seq,
      sensor: r.sensor,
      ts: r.ts,
      value: r.value as number,
      quality: r.quality,
    })),
  );
}

const parseRows = (stdout: string): Row[] =>
  stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Row);

function decodeStdin(input: Buffer): Promise<CliResult> {
  const child = spawn(process.execPath, [BIN, 'decode', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(input);
  return new Promise((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
}

describe('the consumer on captured payloads (real daemon, real broker)', function () {
  this.timeout(60_000);
  const fixture = subscribedSite({
    sensors:
      '  - { id: counter-1, sim: { wave: counter }, every: 20ms }\n  - { id: door-1, sim: { wave: random }, every: 50ms }',
  });
  let payloads: Buffer[] = [];

  beforeEach(async () => {
    payloads = [];
    const unsubscribe = await fixture.site.broker.subscribe(fixture.site.topic, (p) =>
      payloads.push(Buffer.from(p)),
    );
    const daemon = startCli(['run', '-c', fixture.site.configFile]);
    await waitFor(() => payloads.length >= 6, 30_000, 'six captured payloads');
    daemon.child.kill('SIGTERM');
    assert.equal((await daemon.done).code, 0);
    await unsubscribe();
  });

  it('edgegw decode: a raw payload file, a zlib file, lines of JSON / {"data"} / base64, and stdin', async () => {
    const dir = fixture.site.dir;
    const [p0, p1, p2, p3, p4, p5] = payloads as [Buffer, Buffer, Buffer, Buffer, Buffer, Buffer];
    await writeFile(join(dir, 'one.bin'), p0);
    let r = await runCli(['decode', join(dir, 'one.bin')]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(parseRows(r.stdout), rowsOf([p0]));

    await writeFile(join(dir, 'one.z'), deflateSync(p1));
    r = await runCli(['decode', join(dir, 'one.z')]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(parseRows(r.stdout), rowsOf([p1]));

    const lines = [
      p2.toString('utf8'),
      JSON.stringify({ data: b64(deflateSync(p3)) }),
      '# a comment',
      b64(p4),
      'not a payload!',
      b64(deflateSync(p5)),
      p2.toString('utf8'), // repeated: --dedupe drops it
    ];
    await writeFile(join(dir, 'lines.ndjson'), `${lines.join('\n')}\n`);
    r = await runCli(['decode', join(dir, 'lines.ndjson')]);
    assert.equal(r.code, 1, 'a line that does not decode makes the exit 1');
    assert.match(r.stderr, /lines\.ndjson:5: line is not base64 \[EDGEGW_E_DECODE\]/);
    assert.deepEqual(parseRows(r.stdout), rowsOf([p2, p3, p4, p5, p2]));
    r = await runCli(['decode', '--dedupe', join(dir, 'lines.ndjson')]);
    assert.deepEqual(parseRows(r.stdout), rowsOf([p2, p3, p4, p5]));
    assert.match(r.stderr, /"gaps":\[\{"gw":"test-gw1"/);

    r = await decodeStdin(deflateSync(p0));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(parseRows(r.stdout), rowsOf([p0]));
  });

  it('the IoT Rule handler: SELECT * (the JSON object) and encode(*, base64) AS data', async () => {
    const forwarded: Row[] = [];
    const handler = createIotRuleHandler((rows) => void forwarded.push(...rows));
    for (const p of payloads) {
      const plain = await handler(JSON.parse(p.toString('utf8')));
      const wrapped = await handler({ data: b64(deflateSync(p)) });
      assert.deepEqual(plain.rows, rowsOf([p]));
      assert.deepEqual(wrapped.rows, rowsOf([p]));
    }
    assert.deepEqual(forwarded, rowsOf(payloads.flatMap((p) => [p, p])));
    await assert.rejects(handler({ v: 2, gw: 'x', ids: [], recs: [] }), /v2 is newer/);
  });

  it('the Kinesis handler: forwards every record, reports undecodable or unforwarded ones in batchItemFailures', async () => {
    const kinds = (p: Buffer, i: number): Buffer => {
      const s = i % 3;
      if (s === 0) return p; // SELECT * of the JSON payload
      if (s === 1) return Buffer.from(JSON.stringify({ data: b64(deflateSync(p)) })); // the wrapper
      return deflateSync(p); // raw binary payload
    };
    const records = payloads.map((p, i) => ({
      kinesis: {
        kinesisSchemaVersion: '1.0',
        partitionKey: 'test-gw1',
        sequenceNumber: `4959000000000000000000000000000000000000000000000000000${i}`,
        data: b64(kinds(p, i)),
        approximateArrivalTimestamp: 1764380000.5,
      },
      eventSource: 'aws:kinesis',
      eventVersion: '1.0',
      eventID: `shardId-000000000000:4959…${i}`,
      eventName: 'aws:kinesis:record',
      awsRegion: 'eu-west-1',
    }));
    records.splice(2, 0, {
      ...records[0]!,
      kinesis: { ...records[0]!.kinesis, sequenceNumber: 'bad-1', data: b64(Buffer.from('garbage')) },
    });
    const event: KinesisEvent = { Records: records };
    const forwarded: Row[] = [];
    const logged: string[] = [];
    let calls = 0;
    const handler = createKinesisHandler(
      (rows: Row[], _n: Notice[]) => {
        if (++calls === 4) throw new Error('sink unavailable');
        forwarded.push(...rows);
      },
      (l) => logged.push(l),
    );
    const res = await handler(event);
    // Call 4 is the 4th decodable record: payloads[3] (the garbage sits at index 2).
    assert.deepEqual(res, {
      batchItemFailures: [
        { itemIdentifier: 'bad-1' },
        { itemIdentifier: records[4]!.kinesis.sequenceNumber },
      ],
    });
    assert.deepEqual(forwarded, rowsOf(payloads.filter((_, i) => i !== 3)));
    assert.equal(logged.length, 2);
    for (const l of logged) assert.doesNotMatch(l, /garbage/);
  });
});
