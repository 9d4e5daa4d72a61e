// Each configuration error, asserted at its exact line, column and key path.

import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../../../src/config/load.js';
import { BASE, SiteDir } from './fixture.js';

describe('config errors', () => {
  let site: SiteDir;
  beforeEach(async () => {
    site = await SiteDir.create();
  });
  afterEach(async () => {
    await site.remove();
  });

  describe('schema', () => {
    it('a wrong type names the expected type and the value', async () => {
      await site.expectOne(
        BASE + 'status: { socket: 42 }\n',
        'status.socket',
        10,
        19,
        /expected a string, got 42/,
      );
      await site.expectOne(
        BASE + '  maxRecordReadings: lots\n',
        'queue.maxRecordReadings',
        10,
        22,
        /expected an integer, got "lots"/,
      );
    });

    it('an unknown key near a known one suggests it, at the key', async () => {
      const yaml = BASE.replace('  id: gw1\n', '  id: gw1\n  dataDirr: /tmp\n');
      await site.expectOne(
        yaml,
        'gateway.dataDirr',
        3,
        3,
        /unknown key `dataDirr`; did you mean `dataDir`\?/,
      );
    });

    it('an unknown key far from any lists the known keys', async () => {
      await site.expectOne(
        BASE + 'colour: red\n',
        'colour',
        10,
        1,
        /unknown key `colour`; known keys: gateway, uplink, queue/,
      );
    });

    it('a missing required key points at its parent mapping', async () => {
      const yaml = BASE.replace('  id: gw1', '  dataDir: ./data');
      await site.expectOne(yaml, 'gateway.id', 2, 3, /missing required key `id`/);
      const noUplink = 'gateway:\n  id: gw1\nqueue:\n  keyFile: queue.key\n';
      await site.expectOne(noUplink, 'uplink', 1, 1, /missing required key `uplink`/);
    });

    it('a bad duration or size says how to write one', async () => {
      await site.expectOne(
        BASE + '  flush: 2 secs\n',
        'queue.flush',
        10,
        10,
        /"2 secs" is not a duration; .*250ms, 1s, 2m/,
      );
      await site.expectOne(
        BASE + '  maxBytes: 1GB\n',
        'queue.maxBytes',
        10,
        13,
        /"1GB" is not a size; .*256MiB/,
      );
    });

    it('an enum value lists the allowed ones', async () => {
      await site.expectOne(
        BASE + '  whenFull: drop-newest\n',
        'queue.whenFull',
        10,
        13,
        /not one of: drop-oldest, reject-new/,
      );
    });
  });

  describe('sensors', () => {
    it('a duplicate id is reported at the second use', async () => {
      const yaml =
        BASE +
        'sensors:\n  - { id: a, sim: { wave: sine } }\n  - { id: b, sim: { wave: sine } }\n  - { id: a, sim: { wave: counter } }\n';
      await site.expectOne(
        yaml,
        'sensors[2].id',
        13,
        11,
        /duplicate sensor id "a" \(first used by sensors\[0\]\)/,
      );
    });

    it('an unknown bus lists the known buses', async () => {
      const yaml =
        BASE +
        'buses:\n  plc-1: { tcp: { host: 10.0.0.5 } }\n  plc-2: { tcp: { host: 10.0.0.6 } }\n' +
        'sensors:\n  - { id: t, bus: plc-3, table: holding, address: 0 }\n';
      const i = await site.expectOne(yaml, 'sensors[0].bus', 14, 19, /unknown bus "plc-3"/);
      assert.match(i.message, /known buses: plc-1, plc-2/);
    });

    it('a sensor with none or several of bus/gpio/sim', async () => {
      await site.expectOne(
        BASE + 'sensors:\n  - { id: x, every: 1s }\n',
        'sensors[0]',
        11,
        5,
        /one of `bus` \(Modbus\), `gpio` or `sim`/,
      );
      await site.expectOne(
        BASE + 'sensors:\n  - { id: x, sim: { wave: sine }, gpio: { pin: 4 } }\n',
        'sensors[0]',
        11,
        5,
        /exactly one kind.*`gpio` and `sim`/,
      );
    });

    it('errors speak of the branch the keys pick, not of an anyOf', async () => {
      await site.expectOne(
        BASE + 'sensors:\n  - { id: x, sim: { wave: square } }\n',
        'sensors[0].sim.wave',
        11,
        27,
        /"square" is not one of: sine, counter, random/,
      );
      const modbus =
        BASE + 'buses:\n  b1: { tcp: { host: h } }\nsensors:\n  - { id: x, bus: b1, address: 3 }\n';
      await site.expectOne(modbus, 'sensors[0].table', 13, 5, /missing required key `table`/);
    });

    it('modbus type must be bool for bits and not bool for registers', async () => {
      const pre = BASE + 'buses:\n  b1: { tcp: { host: h } }\nsensors:\n';
      await site.expectOne(
        pre + '  - { id: c, bus: b1, table: coil, address: 0, type: uint16 }\n',
        'sensors[0].type',
        13,
        54,
        /type must be bool, not "uint16"/,
      );
      await site.expectOne(
        pre + '  - { id: h, bus: b1, table: holding, address: 0, type: bool }\n',
        'sensors[0].type',
        13,
        57,
        /not bool/,
      );
    });

    it('an address range past 65535', async () => {
      const pre = BASE + 'buses:\n  b1: { tcp: { host: h } }\nsensors:\n';
      await site.expectOne(
        pre + '  - { id: f, bus: b1, table: input, address: 65534, type: float64 }\n',
        'sensors[0].address',
        13,
        46,
        /float64 needs 4 registers from 65534/,
      );
      await site.load(pre + '  - { id: f, bus: b1, table: input, address: 65535 }\n'); // uint16: fits
    });
  });

  describe('buses', () => {
    it('a bus needs exactly one of rtu or tcp', async () => {
      const yaml =
        BASE + 'buses:\n  both: { rtu: { port: /dev/ttyUSB0 }, tcp: { host: h } }\n  none: { timeout: 1s }\n';
      const issues = await site.issues(yaml);
      assert.deepEqual(
        issues.map((i) => [i.path, i.line, i.col]),
        [
          ['buses.both', 11, 9],
          ['buses.none', 12, 9],
        ],
      );
      assert.match(issues[0]!.message, /not both/);
      assert.match(issues[1]!.message, /needs one of `rtu` \(serial\) or `tcp`/);
    });
  });

  describe('uplink', () => {
    it('user:pass@ in the URL is refused without echoing the password', async () => {
      const yaml = BASE.replace('mqtts://broker', 'mqtts://admin:s3cret@broker');
      const i = await site.expectOne(yaml, 'uplink.url', 4, 8, /user:password@/);
      assert.doesNotMatch(i.message, /s3cret/);
      await assert.rejects(site.load(yaml), (e: ConfigError) => !e.message.includes('s3cret'));
    });

    it('user:pass@ in a non-mqtts URL: both errors, still no password', async () => {
      const yaml = BASE.replace('mqtts://broker.example:8883', 'mqtt://admin:s3cret@broker.example:1883');
      const issues = await site.issues(yaml);
      assert.deepEqual(
        issues.map((i) => [i.path, i.line, i.col]),
        [
          ['uplink.url', 4, 8],
          ['uplink.url', 4, 8],
        ],
      );
      assert.match(issues[0]!.message, /user:password@/);
      assert.match(issues[1]!.message, /uses mqtt; only mqtts/);
      assert.ok(issues.every((i) => !i.message.includes('s3cret')));
    });

    it('only mqtts URLs with a host', async () => {
      await site.expectOne(
        BASE.replace('mqtts://broker.example:8883', 'mqtt://broker.example:1883'),
        'uplink.url',
        4,
        8,
        /uses mqtt; only mqtts/,
      );
      await site.expectOne(
        BASE.replace('mqtts://broker.example:8883', 'not a url'),
        'uplink.url',
        4,
        8,
        /is not a URL/,
      );
      await site.expectOne(
        BASE.replace('mqtts://broker.example:8883', 'mqtts:///telemetry'),
        'uplink.url',
        4,
        8,
        /has no host/,
      );
    });

    it('a gateway id IoT Core would refuse', async () => {
      for (const id of ['$aws-gw', 'gw 1', 'g'.repeat(129)]) {
        await site.expectOne(
          BASE.replace('id: gw1', `id: "${id}"`),
          'gateway.id',
          2,
          7,
          /not an id AWS IoT Core accepts/,
        );
      }
      await site.load(BASE.replace('id: gw1', `id: ${'g'.repeat(128)}`));
    });

    it('topic: wildcards, over 256 bytes after {gateway}, over 7 slashes', async () => {
      const withTopic = (t: string, base = BASE) =>
        base.replace('  key: key.pem\n', `  key: key.pem\n  topic: "${t}"\n`);
      await site.expectOne(withTopic('dt/{gateway}/+/x'), 'uplink.topic', 8, 10, /contains \+ or #/);
      await site.expectOne(withTopic('dt/{gateway}/#'), 'uplink.topic', 8, 10, /contains \+ or #/);
      await site.expectOne(
        withTopic('a/b/c/d/e/f/g/h/i'),
        'uplink.topic',
        8,
        10,
        /8 slashes; IoT Core allows at most 7/,
      );
      const longId = BASE.replace('id: gw1', `id: ${'g'.repeat(128)}`);
      const topic = `dt/${'x'.repeat(130)}/{gateway}`; // 143 bytes as written, 262 once filled in
      await site.expectOne(
        withTopic(topic, longId),
        'uplink.topic',
        8,
        10,
        /262 bytes once \{gateway\} is filled in/,
      );
      await site.load(withTopic(topic));
    });

    it("keepalive outside IoT Core's 30s..20m: clamped into it, with a warning at the key", async () => {
      for (const [k, ms, used] of [
        ['10s', 30_000, '30s'],
        ['1s', 30_000, '30s'],
        ['21m', 1_200_000, '20m'],
        ['18h', 1_200_000, '20m'],
      ] as const) {
        const { config, warnings } = await site.load(
          BASE.replace('  key: key.pem\n', `  key: key.pem\n  keepalive: ${k}\n`),
        );
        assert.equal(config.uplink.keepalive, ms, k);
        assert.equal(warnings.length, 1, k);
        const w = warnings[0]!;
        assert.deepEqual([w.path, w.line, w.col, w.severity], ['uplink.keepalive', 8, 14, 'warning'], k);
        assert.match(
          w.message,
          new RegExp(`^${k} is outside 30s\\.\\.20m, .*AWS IoT Core.*; using ${used}$`),
        );
      }
      for (const k of ['30s', '20m', '60s']) {
        const { warnings } = await site.load(
          BASE.replace('  key: key.pem\n', `  key: key.pem\n  keepalive: ${k}\n`),
        );
        assert.deepEqual(warnings, [], k);
      }
    });

    it('keepalive beyond what MQTT can express (65535 s) or 0 is still an error', async () => {
      for (const k of ['0s', '19h']) {
        await site.expectOne(
          BASE.replace('  key: key.pem\n', `  key: key.pem\n  keepalive: ${k}\n`),
          'uplink.keepalive',
          8,
          14,
          /outside 1s\.\.18h/,
        );
      }
    });

    it('backoff.min above backoff.max', async () => {
      const yaml = BASE.replace('  key: key.pem\n', '  key: key.pem\n  backoff: { min: 5m, max: 1m }\n');
      await site.expectOne(
        yaml,
        'uplink.backoff.min',
        8,
        19,
        /backoff\.min \(5m\) is larger than backoff\.max \(1m\)/,
      );
    });
  });

  describe('queue and status', () => {
    it('a record must fit in one message', async () => {
      await site.expectOne(
        BASE + '  maxRecordReadings: 3000\n',
        'queue.maxRecordReadings',
        10,
        22,
        /144512 bytes.*at most 2720/,
      );
      await site.load(BASE + '  maxRecordReadings: 2720\n'); // 2720 * 48 + 512 = 128 KiB exactly
    });

    it('status.metrics must be host:port', async () => {
      await site.expectOne(
        BASE + 'status: { metrics: localhost }\n',
        'status.metrics',
        10,
        20,
        /not host:port/,
      );
      await site.load(BASE + 'status: { metrics: "[::1]:9464" }\n');
    });

    it('a missing named file is an error at its key', async () => {
      await rm(join(site.dir, 'cert.pem'));
      await site.expectOne(BASE, 'uplink.cert', 6, 9, /cert\.pem: no such file/);
    });
  });

  describe('YAML', () => {
    it('an empty file or a non-mapping document', async () => {
      await site.expectOne('', '(root)', 1, 1, /must be a YAML mapping/);
      await site.expectOne('- a\n- b\n', '(root)', 1, 1, /must be a YAML mapping/);
    });

    it('a syntax error points at file:line:col', async () => {
      const issues = await site.issues('gateway:\n  id: [unclosed\nuplink: {}\n');
      assert.ok(issues.length >= 1);
      assert.equal(issues[0]!.line > 1, true);
      const err = await site.load('gateway:\n  id: gw1\n  id: gw2\n').catch((e: unknown) => e);
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, new RegExp(`^${join(site.dir, 'site.yaml')}:3:3: \\(yaml\\): .*[Uu]nique`));
    });
  });

  it('reports every error at once, in source order, one line each', async () => {
    const yaml =
      BASE.replace('  id: gw1\n', '  id: gw1\n  dataDirr: /tmp\n').replace(
        'mqtts://broker',
        'mqtt://broker',
      ) +
      '  flush: soon\n' +
      'sensors:\n  - { id: a, sim: { wave: sine } }\n  - { id: a, sim: { wave: sine } }\n';
    const err = await site.load(yaml).catch((e: unknown) => e);
    assert.ok(err instanceof ConfigError);
    assert.deepEqual(
      err.issues.map((i) => `${i.line}:${i.col} ${i.path}`),
      ['3:3 gateway.dataDirr', '5:8 uplink.url', '11:10 queue.flush', '14:11 sensors[1].id'],
    );
    const lines = err.message.split('\n');
    assert.equal(lines.length, 4);
    for (const l of lines) assert.match(l, /^\/.*site\.yaml:\d+:\d+: [\w.[\]]+: .+/);
  });
});
