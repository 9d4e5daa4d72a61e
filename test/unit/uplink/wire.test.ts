import assert from 'node:assert/strict';
import type { OpenRecord, Reading } from '../../../src/types.js';
import { encodeMessage, packMessages } from '../../../src/uplink/wire.js';

interface Wire {
  v: number;
  gw: string;
  ids: string[];
  recs: { seq: number; t0: number; r: (number | boolean | string | null)[][] }[];
}

/** A consumer's decoder: one message alone back to readings. */
function decode(payload: string | Buffer): (Reading & { seq: number })[] {
  const m = JSON.parse(payload.toString()) as Wire;
  return m.recs.flatMap((rec) =>
    rec.r.map((e) => ({
      seq: rec.seq,
      sensor: m.ids[e[0] as number]!,
      ts: rec.t0 + (e[1] as number),
      value: e[2] as number | boolean,
      quality: (e[3] as Reading['quality'] | undefined) ?? 'good',
    })),
  );
}

const T = 1_764_380_000_000;
const rd = (
  sensor: string,
  ts: number,
  value: number | boolean,
  quality: Reading['quality'] = 'good',
): Reading => ({
  sensor,
  ts,
  value,
  quality,
});

describe('wire format (DESIGN.md §3)', () => {
  it('encodes the example of DESIGN.md byte for byte', () => {
    const rec: OpenRecord = {
      seq: 1041,
      readings: [
        rd('boiler-temp', T + 123, 21.5),
        rd('boiler-temp', T + 1123, 21.6),
        rd('door-1', T + 200, true, 'bad'),
      ],
    };
    // t0 is the record's earliest timestamp, so dt of the first reading is 0 here.
    assert.equal(
      encodeMessage('site-042-gw1', [rec]),
      `{"v":1,"gw":"site-042-gw1","ids":["boiler-temp","door-1"],"recs":[{"seq":1041,"t0":${T + 123},"r":[[0,0,21.5],[0,1000,21.6],[1,77,true,"bad"]]}]}`,
    );
  });

  it('lists ids once per message, shared by all its records', () => {
    const recs: OpenRecord[] = [
      { seq: 1, readings: [rd('a', T, 1), rd('b', T, 2)] },
      { seq: 2, readings: [rd('b', T + 5, 3), rd('c', T + 6, 4)] },
    ];
    const m = JSON.parse(encodeMessage('gw', recs)) as Wire;
    assert.deepEqual(m.ids, ['a', 'b', 'c']);
    assert.deepEqual(m.recs[1]!.r, [
      [1, 0, 3],
      [2, 1, 4],
    ]);
  });

  it('t0 is the minimum ts even when readings are out of order; dt are non-negative integers', () => {
    const rec: OpenRecord = {
      seq: 7,
      readings: [rd('a', T + 50.4, 1), rd('a', T + 0.6, 2), rd('b', T + 10, 3)],
    };
    const m = JSON.parse(encodeMessage('gw', [rec])) as Wire;
    assert.equal(m.recs[0]!.t0, T + 1);
    for (const e of m.recs[0]!.r) assert.ok(Number.isInteger(e[1]) && (e[1] as number) >= 0);
  });

  it('writes quality only when not good, and values as the shortest JSON number', () => {
    const rec: OpenRecord = {
      seq: 3,
      readings: [
        rd('a', T, 0.1 + 0.2),
        rd('a', T, -0),
        rd('a', T, 1e21, 'stale'),
        rd('a', T, false),
        rd('a', T, NaN, 'bad'),
      ],
    };
    const m = JSON.parse(encodeMessage('gw', [rec])) as Wire;
    assert.deepEqual(m.recs[0]!.r, [
      [0, 0, 0.30000000000000004],
      [0, 0, 0],
      [0, 0, 1e21, 'stale'],
      [0, 0, false],
      [0, 0, null, 'bad'],
    ]);
  });

  it('round-trips: every reading decodes from its message alone', () => {
    const recs: OpenRecord[] = Array.from({ length: 50 }, (_, k) => ({
      seq: 100 + k,
      readings: Array.from({ length: 20 }, (_, j) =>
        rd(
          `sensor-${(k + j) % 7}`,
          T + k * 1000 + j * 37,
          j % 5 === 0 ? j % 2 === 0 : Math.round(j * 10.7) / 10,
          j === 3 ? 'bad' : 'good',
        ),
      ),
    }));
    const msgs = packMessages('gw-1', recs, 4096);
    assert.ok(msgs.length > 1);
    const back = msgs.flatMap((m) => decode(m.payload));
    const want = recs.flatMap((r) => r.readings.map((x) => ({ ...x, seq: r.seq })));
    assert.deepEqual(back, want);
  });

  it('packs whole records in seq order, each message within the limit and standalone', () => {
    const recs: OpenRecord[] = Array.from({ length: 200 }, (_, k) => ({
      seq: k + 1,
      readings: Array.from({ length: 1 + (k % 13) }, (_, j) => rd(`id-${k % 9}-${j}`, T + j, j * 1.5)),
    }));
    for (const max of [500, 1000, 5000, 1_000_000]) {
      const msgs = packMessages('gw', recs, max);
      assert.deepEqual(
        msgs.flatMap((m) => m.seqs),
        recs.map((r) => r.seq),
      );
      for (const m of msgs) {
        assert.ok(m.payload.length <= max, `${m.payload.length} > ${max}`);
        const w = JSON.parse(m.payload.toString()) as Wire;
        assert.deepEqual(
          w.recs.map((r) => r.seq),
          m.seqs,
        );
        assert.equal(new Set(w.ids).size, w.ids.length, 'ids once each');
        assert.equal(m.readings, decode(m.payload).length);
      }
    }
  });

  it('packs greedily: a message closes only when the next record does not fit', () => {
    const recs: OpenRecord[] = Array.from({ length: 40 }, (_, k) => ({
      seq: k + 1,
      readings: [rd('s', T, k)],
    }));
    const msgs = packMessages('gw', recs, 600);
    for (let i = 0; i + 1 < msgs.length; i++) {
      const grown = encodeMessage(
        'gw',
        [...msgs[i]!.seqs, msgs[i + 1]!.seqs[0]!].map((seq) => recs[seq - 1]!),
      );
      assert.ok(Buffer.byteLength(grown) > 600, 'the next record would have fitted');
    }
    const total = Buffer.byteLength(encodeMessage('gw', recs));
    assert.equal(msgs.length, Math.max(2, Math.ceil(total / 600)));
  });

  it('puts a record bigger than the limit alone in its own message', () => {
    const big: OpenRecord = { seq: 2, readings: Array.from({ length: 100 }, (_, j) => rd('x', T + j, j)) };
    const msgs = packMessages(
      'gw',
      [{ seq: 1, readings: [rd('x', T, 1)] }, big, { seq: 3, readings: [rd('x', T, 1)] }],
      200,
    );
    assert.deepEqual(
      msgs.map((m) => m.seqs),
      [[1], [2], [3]],
    );
    assert.ok(msgs[1]!.payload.length > 200);
  });

  it('counts bytes, not characters, for non-ASCII gateway ids', () => {
    const recs: OpenRecord[] = Array.from({ length: 30 }, (_, k) => ({
      seq: k + 1,
      readings: [rd('s', T, k)],
    }));
    for (const m of packMessages('gw-é€', recs, 200)) assert.ok(m.payload.length <= 200);
  });

  it('writes a notice as its own entry of recs: empty r (a consumer ignoring notices still decodes), and gap', () => {
    const data: OpenRecord = { seq: 1199, readings: [rd('boiler-temp', T + 5, 21.5)] };
    const notice: OpenRecord = {
      seq: 1200,
      readings: [],
      t0: 1_764_380_000_000,
      notice: { from: 1100, to: 1150, why: 'dropped', readings: 1020 },
    };
    const unknown: OpenRecord = {
      seq: 1201,
      readings: [],
      t0: 1_764_380_000_001,
      notice: { from: 900, to: 900, why: 'skipped', readings: null },
    };
    const json = encodeMessage('gw1', [data, notice, unknown]);
    const m = JSON.parse(json) as Wire & { recs: { gap?: unknown }[] };
    assert.deepEqual(m.ids, ['boiler-temp'], 'a notice adds no sensor id');
    assert.deepEqual(m.recs[1], {
      seq: 1200,
      t0: 1_764_380_000_000,
      r: [],
      gap: { from: 1100, to: 1150, why: 'dropped', readings: 1020 },
    });
    assert.ok(
      json.includes(
        '{"seq":1200,"t0":1764380000000,"r":[],"gap":{"from":1100,"to":1150,"why":"dropped","readings":1020}}',
      ),
    );
    assert.deepEqual(m.recs[2]!.gap, { from: 900, to: 900, why: 'skipped', readings: null });
    // The reading decoder (which knows nothing of notices) sees only the data record's reading.
    assert.deepEqual(
      decode(json).map((r) => r.seq),
      [1199],
    );
    const [msg] = packMessages('gw1', [data, notice], 1 << 20);
    assert.equal(msg!.readings, 1, 'a notice carries no readings (delivered counters stay right)');
    assert.deepEqual(msg!.seqs, [1199, 1200]);
  });
});

describe('wire values and numbers (written as bytes)', () => {
  /** The message JSON.stringify writes for one record of these values, each from sensor `s`. */
  function expected(seq: number, t0: number, values: readonly (number | boolean)[]): string {
    const r = values.map(
      (v, k) => `[0,${k},${JSON.stringify(Number.isFinite(v) || typeof v === 'boolean' ? v : null)}]`,
    );
    return `{"v":1,"gw":"gw","ids":["s"],"recs":[{"seq":${seq},"t0":${t0},"r":[${r.join(',')}]}]}`;
  }

  it('writes every value exactly as JSON.stringify does, and null for a non-finite one', () => {
    // Values as sensors give them (0..4 decimals, scaled to any magnitude), raw doubles, signs.
    let seed = 42;
    const random = (): number => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    const values: (number | boolean)[] = [0, -0, 0.01, -0.01, 0.05, 0.1, 0.29, 1.15, 9_999_999_999_999.99];
    values.push(1e13, 1e-7, 5e-324, 2 ** 53, 1e21, 123.456, -5, Number.MAX_VALUE, -Number.MIN_VALUE);
    values.push(NaN, Infinity, -Infinity, true, false);
    for (let i = 0; i < 200_000; i++) {
      const decimals = i % 5;
      const magnitude = 10 ** (Math.floor(random() * 16) - 2);
      const v = Math.round((random() - 0.5) * magnitude * 10 ** decimals) / 10 ** decimals;
      values.push(v, -v, random() * magnitude, Math.fround(v));
    }
    const t0 = 1_764_380_000_000;
    for (let from = 0; from < values.length; from += 1000) {
      const chunk = values.slice(from, from + 1000);
      const rec: OpenRecord = {
        seq: from + 1,
        readings: chunk.map((value, k) => ({ sensor: 's', ts: t0 + k, value, quality: 'good' })),
      };
      assert.equal(encodeMessage('gw', [rec]), expected(from + 1, t0, chunk), `values from #${from}`);
    }
  });

  it('writes seqs, times and indices of any size, and a quality that is not good', () => {
    const rec: OpenRecord = {
      seq: 2 ** 53 - 1,
      readings: [
        { sensor: 'a', ts: 0, value: 1, quality: 'good' },
        { sensor: 'b', ts: 2 ** 48 - 1, value: 2, quality: 'unsynced' },
      ],
    };
    assert.equal(
      encodeMessage('gw', [rec]),
      `{"v":1,"gw":"gw","ids":["a","b"],"recs":[{"seq":${2 ** 53 - 1},"t0":0,"r":[[0,0,1],[1,${2 ** 48 - 1},2,"unsynced"]]}]}`,
    );
    // A record larger than the scratch space it starts with (64 KiB).
    const big: OpenRecord = {
      seq: 9,
      readings: Array.from({ length: 5000 }, (_, k) => ({
        sensor: `s${k % 300}`,
        ts: 1000 + k,
        value: k / 7,
        quality: 'good' as const,
      })),
    };
    const m = JSON.parse(encodeMessage('gw', [big])) as Wire;
    assert.equal(m.recs[0]!.r.length, 5000);
    const last = m.recs[0]!.r[4999]!;
    assert.equal(m.ids[last[0] as number], `s${4999 % 300}`);
    assert.deepEqual(last.slice(1), [4999, 4999 / 7]);
  });

  it('lists the ids each record brings in sorted order, after those the message already lists', () => {
    const at = (sensor: string, ts: number): OpenRecord['readings'][number] => ({
      sensor,
      ts,
      value: ts,
      quality: 'good',
    });
    const first: OpenRecord = {
      seq: 1,
      readings: [at('zeta', 1), at('alpha', 2), at('mid', 3), at('zeta', 4)],
    };
    const second: OpenRecord = { seq: 2, readings: [at('mid', 5), at('beta', 6)] };
    const m = JSON.parse(encodeMessage('gw', [first, second])) as Wire;
    assert.deepEqual(m.ids, ['alpha', 'mid', 'zeta', 'beta']);
    assert.deepEqual(
      m.recs.flatMap((r) => r.r.map((x) => m.ids[x[0] as number])),
      ['zeta', 'alpha', 'mid', 'zeta', 'mid', 'beta'],
    );
  });
});
