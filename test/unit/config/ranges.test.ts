// Every duration and size has a range the loader enforces, at the value's line and column.

import assert from 'node:assert/strict';
import type { TSchema } from '@sinclair/typebox';
import { SiteSchema } from '../../../src/config/schema.js';
import { DURATION_PATTERN, SIZE_PATTERN, parseDuration, rangeOf } from '../../../src/config/units.js';
import { BASE, SiteDir } from './fixture.js';

/** Sizes whose range another change owns (the queue's on-disk bound and free-space reserve). */
const RANGED_ELSEWHERE = new Set(['queue.maxBytes', 'queue.minFreeBytes']);

function unitKeys(s: TSchema, path: string, out: [string, TSchema][]): [string, TSchema][] {
  if (s.pattern === DURATION_PATTERN || s.pattern === SIZE_PATTERN) out.push([path, s]);
  for (const [k, p] of Object.entries((s.properties ?? {}) as Record<string, TSchema>)) {
    unitKeys(p, path ? `${path}.${k}` : k, out);
  }
  for (const p of Object.values((s.patternProperties ?? {}) as Record<string, TSchema>)) {
    unitKeys(p, `${path}.<name>`, out);
  }
  if (s.items) unitKeys(s.items as TSchema, `${path}[]`, out);
  for (const p of (s.anyOf ?? []) as TSchema[]) unitKeys(p, path, out);
  return out;
}

/** 1-based line and column of the first `needle` in `yaml` at or after line `from`. */
function at(yaml: string, needle: string, from = 1): [number, number] {
  const lines = yaml.split('\n');
  for (let i = from - 1; i < lines.length; i++) {
    const c = lines[i]!.indexOf(needle);
    if (c >= 0) return [i + 1, c + 1];
  }
  throw new Error(`${needle} not in the YAML`);
}

describe('config ranges', () => {
  let site: SiteDir;
  beforeEach(async () => {
    site = await SiteDir.create();
  });
  afterEach(async () => {
    await site.remove();
  });

  it('every duration and size in the schema has a range, and no duration reaches 2^31 ms', () => {
    const keys = unitKeys(SiteSchema, '', []);
    assert.ok(keys.length >= 14, `found ${keys.length}`);
    for (const [path, s] of keys) {
      if (RANGED_ELSEWHERE.has(path)) continue;
      const range = rangeOf(s);
      assert.ok(range, `${path} has no range`);
      if (s.pattern === DURATION_PATTERN) {
        assert.ok(parseDuration(range[1]) < 2 ** 31, `${path}: ${range[1]} overflows Node's timers`);
      }
    }
  });

  const cases: [string, string, string, string, RegExp][] = [
    // [what, yaml appended to BASE (from line 10), key path, the value as written, message]
    [
      'every: 0ms',
      'sensors:\n  - { id: a, sim: { wave: sine }, every: 0ms }\n',
      'sensors[0].every',
      '0ms',
      /"0ms" is outside 10ms\.\.24h/,
    ],
    [
      'every: 720h',
      'sensors:\n  - { id: a, sim: { wave: sine }, every: 720h }\n',
      'sensors[0].every',
      '720h',
      /"720h" is outside 10ms\.\.24h/,
    ],
    [
      'every rounding to 0',
      'sensors:\n  - { id: a, sim: { wave: sine }, every: 0.0001s }\n',
      'sensors[0].every',
      '0.0001s',
      /outside 10ms\.\.24h/,
    ],
    [
      'sim period 0ms',
      'sensors:\n  - { id: a, sim: { wave: sine, period: 0ms } }\n',
      'sensors[0].sim.period',
      '0ms',
      /outside 10ms\.\.168h/,
    ],
    [
      'modbus every 25h',
      'buses: { b: { tcp: { host: h } } }\nsensors:\n  - { id: a, bus: b, table: input, address: 0, every: 25h }\n',
      'sensors[0].every',
      '25h',
      /outside 10ms\.\.24h/,
    ],
    [
      'gpio counter every 1ms',
      'sensors:\n  - { id: a, gpio: { pin: 17, mode: counter }, every: 1ms }\n',
      'sensors[0].every',
      '1ms',
      /outside 10ms\.\.24h/,
    ],
    [
      'gpio debounce 11s',
      'sensors:\n  - { id: a, gpio: { pin: 17, debounce: 11s } }\n',
      'sensors[0].gpio.debounce',
      '11s',
      /outside 0ms\.\.10s/,
    ],
    ['flush: 0ms', '  flush: 0ms\n', 'queue.flush', '0ms', /"0ms" is outside 10ms\.\.10s/],
    ['flush: 1m', '  flush: 1m\n', 'queue.flush', '1m', /outside 10ms\.\.10s/],
    [
      'bus timeout 0ms',
      'buses: { b: { tcp: { host: h }, timeout: 0ms } }\n',
      'buses.b.timeout',
      '0ms',
      /outside 10ms\.\.60s/,
    ],
    [
      'interFrameDelay 2s',
      'buses: { b: { tcp: { host: h }, interFrameDelay: 2s } }\n',
      'buses.b.interFrameDelay',
      '2s',
      /outside 0ms\.\.1s/,
    ],
    [
      'a huge number',
      'sensors:\n  - { id: a, sim: { wave: sine }, every: ' + '9'.repeat(400) + 'h }\n',
      'sensors[0].every',
      '999',
      /a 401-character value is outside 10ms\.\.24h/,
    ],
  ];
  for (const [what, extra, path, needle, message] of cases) {
    it(`refuses ${what}`, async () => {
      const yaml = BASE + extra;
      await site.expectOne(yaml, path, ...at(yaml, needle, 10), message);
    });
  }

  const uplink: [string, string, string, number, RegExp][] = [
    [
      'backoff.min 0ms',
      '  backoff: { min: 0ms }\n',
      'uplink.backoff.min',
      19,
      /"0ms" is outside 100ms\.\.10m/,
    ],
    ['backoff.max 2h', '  backoff: { max: 2h }\n', 'uplink.backoff.max', 19, /outside 100ms\.\.1h/],
    ['keepalive 0s', '  keepalive: 0s\n', 'uplink.keepalive', 14, /outside 1s\.\.18h/],
    [
      'maxPayloadBytes 1MiB',
      '  limits: { maxPayloadBytes: 1MiB }\n',
      'uplink.limits.maxPayloadBytes',
      30,
      /outside 1KiB\.\.128KiB/,
    ],
    [
      'bytesPerSecond 0B',
      '  limits: { bytesPerSecond: 0B }\n',
      'uplink.limits.bytesPerSecond',
      29,
      /outside 1KiB\.\.1GiB/,
    ],
  ];
  for (const [what, extra, path, col, message] of uplink) {
    it(`refuses ${what}`, async () => {
      const yaml = BASE.replace('  key: key.pem\n', `  key: key.pem\n${extra}`);
      await site.expectOne(yaml, path, 8, col, message);
    });
  }

  it('backoff.min above backoff.max is a cross-field error (rules.ts)', async () => {
    const yaml = BASE.replace('  key: key.pem\n', '  key: key.pem\n  backoff: { min: 5m, max: 1m }\n');
    await site.expectOne(yaml, 'uplink.backoff.min', 8, 19, /larger than backoff\.max/);
  });

  it('accepts both ends of every range', async () => {
    const yaml =
      BASE.replace(
        '  key: key.pem\n',
        '  key: key.pem\n  keepalive: 20m\n  backoff: { min: 100ms, max: 1h }\n' +
          '  limits: { bytesPerSecond: 1KiB, maxPayloadBytes: 128KiB }\n',
      ) +
      '  flush: 10ms\n' +
      'buses: { b: { tcp: { host: h }, timeout: 60s, interFrameDelay: 0ms } }\n' +
      'sensors:\n' +
      '  - { id: a, sim: { wave: sine, period: 168h }, every: 10ms }\n' +
      '  - { id: b, sim: { wave: sine, period: 10ms }, every: 24h }\n' +
      '  - { id: c, gpio: { pin: 17, debounce: 10s, mode: counter }, every: 10ms }\n';
    const { config } = await site.load(yaml);
    assert.equal(config.uplink.keepalive, 1_200_000);
    assert.equal(config.queue.flush, 10);
    assert.equal(config.sensors[1]!.every, 86_400_000);
  });
});
