import assert from 'node:assert/strict';
import { inflateSync } from 'node:zlib';
import type { OpenRecord, Reading } from '../../../src/types.js';
import { messageBytes } from '../../../src/uplink/pacer.js';
import {
  MAX_INFLATED_BYTES,
  MessagePacker,
  packMessages,
  type PackedMessage,
} from '../../../src/uplink/wire.js';
import { prng } from '../../helpers/readings.js';

// Decoded here with node:zlib + JSON.parse only, independent of the packer.
interface Wire {
  v: number;
  gw: string;
  ids: string[];
  recs: { seq: number; t0: number; r: (number | boolean | string | null)[][] }[];
}

function inflate(m: PackedMessage): Wire {
  const b = m.payload;
  // The shared framing: a zlib header (CM 8, header check), never the plain JSON's `{`.
  assert.equal(b[0]! & 0x0f, 8, 'CM = 8 (deflate)');
  assert.equal((b[0]! * 256 + b[1]!) % 31, 0, 'zlib header check');
  const json = inflateSync(b);
  assert.ok(json.length <= MAX_INFLATED_BYTES, 'inflated size bounded');
  return JSON.parse(json.toString('utf8')) as Wire;
}

function decode(m: PackedMessage): (Reading & { seq: number })[] {
  const w = inflate(m);
  assert.equal(new Set(w.ids).size, w.ids.length, 'ids once each');
  return w.recs.flatMap((rec) =>
    rec.r.map((e) => {
      assert.ok((e[0] as number) < w.ids.length, 'index into this message’s ids');
      return {
        seq: rec.seq,
        sensor: w.ids[e[0] as number]!,
        ts: rec.t0 + (e[1] as number),
        value: e[2] as number,
        quality: (e[3] as Reading['quality'] | undefined) ?? 'good',
      };
    }),
  );
}

const T0 = 1_764_380_000_000;
/** IoT Core's quotas, the defaults: the paced message size (~10 KB). */
const PACED = messageBytes({
  publishesPerSecond: 100,
  bytesPerSecond: 512 * 1024,
  maxPayloadBytes: 128 * 1024,
});

/**
 * The typical site of issue 8: 20 sensors at 1 Hz, 12-character ids, values with 1–2 decimals (a
 * random walk), each sensor at its own phase; records as the batcher makes them every `flushMs`.
 */
function typicalSite(minutes: number, flushMs = 200, seed = 8): OpenRecord[] {
  const rand = prng(seed);
  const kinds = ['boiler-t', 'press-in', 'humid-rm', 'flow-out', 'power-kw'];
  const ids = Array.from({ length: 20 }, (_, i) => `${kinds[i % 5]!}-${String(i).padStart(3, '0')}`);
  const values = ids.map(() => 10 + rand() * 190);
  const recs: { seq: number; readings: Reading[] }[] = [];
  for (let s = 0; s < minutes * 60; s++) {
    for (let i = 0; i < 20; i++) {
      const p = i % 2 === 0 ? 10 : 100;
      let v = values[i]! + (rand() - 0.5) * 4;
      if (v < 0 || v >= 250) v = 10 + rand() * 190;
      values[i] = v = Math.round(v * p) / p;
      const ts = T0 + s * 1000 + i * 50;
      const window = Math.floor((ts - T0) / flushMs);
      if (recs.length <= window) recs.push({ seq: recs.length + 1, readings: [] });
      recs[window]!.readings.push({ sensor: ids[i]!, ts, value: v, quality: 'good' });
    }
  }
  return recs;
}

const readingsOf = (recs: readonly OpenRecord[]) =>
  recs.flatMap((r) => r.readings.map((x) => ({ ...x, seq: r.seq })));

describe('compressed messages (uplink.compression: deflate)', () => {
  it('typical site: ≤ 4.5 B/reading in paced messages, every reading decodes, seqs contiguous', () => {
    const recs = typicalSite(60);
    const packer = new MessagePacker('gw-site-0042', PACED, 'deflate');
    const msgs: PackedMessage[] = [];
    for (const rec of recs) {
      const closed = packer.add(rec);
      if (closed) msgs.push(closed);
    }
    msgs.push(...packer.flushAll());
    assert.deepEqual(msgs.map((m) => decode(m)).flat(), readingsOf(recs), 'every reading, in seq order');
    const full = msgs.slice(0, -1);
    for (const m of msgs) {
      assert.equal(m.compressed, true);
      assert.ok(m.payload.length <= PACED, `${m.payload.length} > ${PACED}`);
      assert.equal(m.readings, decode(m).length);
    }
    for (const m of full)
      assert.ok(m.payload.length >= PACED * 0.9, `full message only ${m.payload.length} B`);
    const bytes = full.reduce((s, m) => s + m.payload.length, 0);
    const readings = full.reduce((s, m) => s + m.readings, 0);
    assert.ok(bytes / readings <= 4.5, `${(bytes / readings).toFixed(2)} B/reading`);
    // The same quota carries ≥ 3.5× the readings of plain messages.
    const plain = packMessages('gw-site-0042', recs, PACED).slice(0, -1);
    const plainPer =
      plain.reduce((s, m) => s + m.payload.length, 0) / plain.reduce((s, m) => s + m.readings, 0);
    assert.ok(plainPer / (bytes / readings) >= 3.5, `only ${(plainPer / (bytes / readings)).toFixed(2)}×`);
    // Efficiency: compressed about once per message, not once per record.
    assert.ok(packer.compressions <= msgs.length * 1.5, `${packer.compressions} for ${msgs.length} messages`);
  });

  it('carries records that did not fit into the next message: whole, in seq order, re-indexed', () => {
    // Random ids and values: the ratio varies from record to record, so estimates miss both ways.
    const rand = prng(3);
    const recs: OpenRecord[] = Array.from({ length: 400 }, (_, k) => ({
      seq: 1000 + k,
      readings: Array.from({ length: 1 + Math.floor(rand() * 30) }, (_, j) => ({
        sensor: rand() < 0.5 ? `s-${j}` : `x${Math.floor(rand() * 1e9).toString(36)}`,
        ts: T0 + k * 100 + j,
        value: rand() < 0.3 ? Math.floor(rand() * 1e6) / 100 : j,
        quality: rand() < 0.1 ? 'bad' : 'good',
      })),
    }));
    for (const max of [1500, 4000, 9744]) {
      const packer = new MessagePacker('gw', max, 'deflate');
      const msgs: PackedMessage[] = [];
      for (const rec of recs) {
        const closed = packer.add(rec);
        if (closed) msgs.push(closed);
        // What is open or sent is exactly the records added so far.
        const held = [...msgs.flatMap((m) => m.seqs), ...packer.pendingSeqs];
        assert.deepEqual(
          held,
          recs.slice(0, rec.seq - 1000 + 1).map((r) => r.seq),
        );
      }
      msgs.push(...packer.flushAll());
      assert.deepEqual(packer.pendingSeqs, []);
      assert.deepEqual(msgs.map((m) => decode(m)).flat(), readingsOf(recs));
      for (const m of msgs) {
        assert.ok(m.payload.length <= max, `${m.payload.length} > ${max}`);
        assert.deepEqual(
          inflate(m).recs.map((r) => r.seq),
          m.seqs,
        );
      }
    }
  });

  it('puts a record too large even compressed alone in its own message', () => {
    const rand = prng(5);
    const noise = (seq: number, n: number): OpenRecord => ({
      seq,
      readings: Array.from({ length: n }, (_, j) => ({
        sensor: `n${j}`,
        ts: T0 + j,
        value: Math.floor(rand() * 1e12),
        quality: 'good',
      })),
    });
    const msgs = packMessages('gw', [noise(1, 2), noise(2, 300), noise(3, 2)], 500, 'deflate');
    assert.deepEqual(
      msgs.map((m) => m.seqs),
      [[1], [2], [3]],
    );
    assert.ok(msgs[1]!.payload.length > 500);
    assert.equal(decode(msgs[1]!).length, 300);
  });

  it('bounds the inflated size of very compressible data by MAX_INFLATED_BYTES', () => {
    const recs: OpenRecord[] = Array.from({ length: 6000 }, (_, k) => ({
      seq: k + 1,
      readings: Array.from({ length: 20 }, (_, j) => ({
        sensor: `s${j}`,
        ts: T0,
        value: 0,
        quality: 'good',
      })),
    }));
    const msgs = packMessages('gw', recs, 128 * 1024, 'deflate');
    assert.ok(msgs.length > 1, 'split by the inflated size, not the compressed one');
    assert.deepEqual(
      msgs.flatMap((m) => m.seqs),
      recs.map((r) => r.seq),
    );
    for (const m of msgs) assert.ok(inflateSync(m.payload).length <= MAX_INFLATED_BYTES);
  });

  it('leaves plain messages plain (compression none: the JSON itself, first byte {)', () => {
    const msgs = packMessages('gw', typicalSite(1), PACED);
    for (const m of msgs) {
      assert.equal(m.compressed, false);
      assert.equal(m.payload[0], 0x7b);
    }
  });
});
