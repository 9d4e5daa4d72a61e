// docs/wire-vectors/v1: every vector through the consumer's decodePayload, and every vector with
// `records` through the gateway's packer, which must write what the consumer reads the same way.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { inflateSync } from 'node:zlib';
import { decodePayload } from '../../../src/consumer/decode.js';
import { DecodeError } from '../../../src/consumer/errors.js';
import { encodeMessage, packMessages } from '../../../src/uplink/wire.js';
import type { GapNotice, OpenRecord, Quality } from '../../../src/types.js';

interface Vector {
  name: string;
  payload: { text: string } | { base64: string };
  plain?: string;
  records?: {
    seq: number;
    readings: { sensor: string; ts: number; value: number | boolean | null; quality: string }[];
    notice?: GapNotice;
    t0?: number;
  }[];
  expect?: unknown;
  error?: { failure: string; mentions: string };
}

const DIR = new URL('../../../../docs/wire-vectors/v1/', import.meta.url);
const vectors: Vector[] = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(new URL(f, DIR), 'utf8')) as Vector);
const byName = new Map(vectors.map((v) => [v.name, v]));

function bytes(v: Vector): Buffer {
  return 'text' in v.payload ? Buffer.from(v.payload.text, 'utf8') : Buffer.from(v.payload.base64, 'base64');
}

/** The vector's records as the packer takes them (a null value stands for a non-finite number). */
function openRecords(v: Vector): OpenRecord[] {
  return v.records!.map((r) => ({
    seq: r.seq,
    readings: r.readings.map((x) => ({
      sensor: x.sensor,
      ts: x.ts,
      value: x.value === null ? NaN : x.value,
      quality: x.quality as Quality,
    })),
    ...(r.notice === undefined ? {} : { notice: r.notice, t0: r.t0 ?? 0 }),
  }));
}

describe('wire-format test vectors (docs/wire-vectors/v1)', () => {
  it('covers plain, compressed, notices, every quality and value type, and refusals', () => {
    const names = vectors.map((v) => v.name);
    for (const p of ['plain-', 'deflate-', 'notice-', 'invalid-'])
      assert.ok(
        names.some((n) => n.startsWith(p)),
        `no ${p}* vector`,
      );
    const text = JSON.stringify(vectors.map((v) => v.expect ?? null));
    for (const q of ['"good"', '"bad"', '"stale"', '"unsynced"', 'true', 'false', 'null'])
      assert.ok(text.includes(q), q);
    for (const why of ['dropped', 'quarantined', 'write-failed', 'skipped'])
      assert.ok(text.includes(why), why);
  });

  for (const v of vectors) {
    it(`decodes ${v.name}`, () => {
      if (v.error !== undefined) {
        assert.throws(
          () => decodePayload(bytes(v)),
          (err: unknown) =>
            err instanceof DecodeError &&
            err.failure === v.error!.failure &&
            err.message.includes(v.error!.mentions) &&
            err.code === 'EDGEGW_E_DECODE',
        );
        return;
      }
      assert.deepEqual(decodePayload(bytes(v)), v.expect);
    });
  }

  for (const v of vectors.filter((x) => x.plain !== undefined)) {
    it(`${v.name} inflates to exactly the bytes of ${v.plain}`, () => {
      const b = bytes(v);
      assert.equal(b[0], 0x78);
      const plain = byName.get(v.plain!)!;
      assert.equal(inflateSync(b).toString('utf8'), (plain.payload as { text: string }).text);
    });
  }

  const packable = vectors.filter((v) => v.records !== undefined);
  for (const v of packable) {
    it(`the gateway's packer writes ${v.name} so that it decodes to the same rows`, () => {
      const recs = openRecords(v);
      const expected = v.expect as { rows: unknown[]; seqs: number[]; gw: string };
      const one = decodePayload(Buffer.from(encodeMessage(expected.gw, recs), 'utf8'));
      assert.deepEqual(one, v.expect);
      // Packed into several small messages, each stands alone and the rows are the same.
      const msgs = packMessages(expected.gw, recs, 120);
      const rows = msgs.flatMap((m) => decodePayload(m.payload).rows);
      assert.deepEqual(rows, expected.rows);
      // Compressed (uplink.compression: deflate): zlib framing, the same rows.
      const zipped = packMessages(expected.gw, recs, 4096, 'deflate');
      for (const m of zipped) assert.equal(m.payload[0], 0x78, 'a zlib stream');
      assert.deepEqual(
        zipped.flatMap((m) => decodePayload(m.payload).rows),
        expected.rows,
      );
    });
  }
});
