// Loading valid sites: defaults, decoding, paths, EDGEGW_CONFIG, overrides, warnings, shipped files.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { ConfigError, defaultConfigPath, loadConfig } from '../../../src/config/load.js';
import { EdgegwError } from '../../../src/errors.js';
import { renderConfigReference } from '../../../src/config/export-schema.js';
import { BASE, SiteDir } from './fixture.js';

const repoFile = (rel: string) => fileURLToPath(new URL(`../../../../${rel}`, import.meta.url));

describe('loadConfig', () => {
  let site: SiteDir;
  beforeEach(async () => {
    site = await SiteDir.create();
  });
  afterEach(async () => {
    await site.remove();
  });

  it('applies the schema defaults', async () => {
    const { config } = await site.load(BASE + 'buses:\n  b1: { tcp: { host: h } }\n');
    assert.equal(config.gateway.dataDir, '/var/lib/edgegw');
    assert.equal(config.uplink.topic, 'dt/edgegw/{gateway}/telemetry');
    assert.equal(config.uplink.limits.inflight, 16);
    assert.equal(config.queue.whenFull, 'drop-oldest');
    assert.equal(config.queue.durability, 'fsync');
    assert.equal(config.queue.maxRecordReadings, 2000);
    assert.equal(config.status.socket, '/run/edgegw/status.sock');
    assert.equal(config.log.level, 'info');
    assert.deepEqual(config.sensors, []);
    const bus = config.buses.b1!;
    assert.deepEqual([bus.tcp?.port, bus.retries, bus.maxGap, bus.interFrameDelay], [502, 1, 8, 0]);
  });

  it('reads uplink.protocol 5 written as a YAML number, and refuses other versions', async () => {
    const five = await site.load(BASE.replace('  key: key.pem\n', '  key: key.pem\n  protocol: 5\n'));
    assert.equal(five.config.uplink.protocol, '5');
    const dflt = await site.load(BASE);
    assert.equal(dflt.config.uplink.protocol, '3.1.1');
    await assert.rejects(
      site.load(BASE.replace('  key: key.pem\n', '  key: key.pem\n  protocol: 4\n')),
      /uplink\.protocol/,
    );
  });

  it('paces an RTU line 5 ms by default, a TCP bus not at all, and keeps what the file sets', async () => {
    const { config } = await site.load(
      BASE +
        'buses:\n  line: { rtu: { port: /dev/ttyUSB0 } }\n  plc: { tcp: { host: h } }\n' +
        '  slow: { tcp: { host: h }, interFrameDelay: 20ms }\n',
    );
    assert.equal(config.buses.line!.interFrameDelay, 5, 'RS-485 needs its silence');
    assert.equal(config.buses.plc!.interFrameDelay, 0, 'TCP: no pause unless asked for');
    assert.equal(config.buses.slow!.interFrameDelay, 20);
  });

  it('decodes durations to ms and sizes to bytes', async () => {
    const yaml =
      BASE.replace(
        '  key: key.pem\n',
        '  key: key.pem\n  keepalive: 90s\n  limits: { bytesPerSecond: 64KiB }\n',
      ) + '  flush: 1.5s\n  maxBytes: 1GiB\n';
    const { config } = await site.load(yaml);
    assert.equal(config.uplink.keepalive, 90_000);
    assert.equal(config.uplink.limits.bytesPerSecond, 65_536);
    assert.equal(config.uplink.limits.maxPayloadBytes, 131_072);
    assert.equal(config.uplink.backoff.min, 1000);
    assert.equal(config.uplink.backoff.max, 120_000);
    assert.equal(config.queue.flush, 1500);
    assert.equal(config.queue.maxBytes, 1024 ** 3);
  });

  it('defaults the modbus type from the table', async () => {
    const yaml =
      BASE +
      'buses:\n  b1: { tcp: { host: h } }\nsensors:\n' +
      '  - { id: c, bus: b1, table: coil, address: 0 }\n  - { id: d, bus: b1, table: discrete, address: 0 }\n' +
      '  - { id: h, bus: b1, table: holding, address: 0 }\n  - { id: i, bus: b1, table: input, address: 0 }\n';
    const { config } = await site.load(yaml);
    assert.deepEqual(
      config.sensors.map((s) => ('type' in s ? s.type : undefined)),
      ['bool', 'bool', 'uint16', 'uint16'],
    );
  });

  it('resolves relative paths against the config folder and returns the absolute file', async () => {
    await site.write('pki/ca.pem', 'x');
    const yaml =
      BASE.replace('ca: ca.pem', 'ca: pki/ca.pem').replace('  id: gw1\n', '  id: gw1\n  dataDir: ./data\n') +
      'status: { socket: run/s.sock }\n';
    const loaded = await site.load(yaml);
    assert.equal(loaded.file, join(site.dir, 'site.yaml'));
    assert.equal(loaded.config.gateway.dataDir, join(site.dir, 'data'));
    assert.equal(loaded.config.uplink.ca, join(site.dir, 'pki/ca.pem'));
    assert.equal(loaded.config.uplink.key, join(site.dir, 'key.pem'));
    assert.equal(loaded.config.queue.keyFile, join(site.dir, 'queue.key'));
    assert.equal(loaded.config.status.socket, join(site.dir, 'run/s.sock'));
  });

  it('returns a deep-frozen config', async () => {
    const { config } = await site.load(BASE + 'sensors:\n  - { id: a, sim: { wave: sine } }\n');
    assert.ok(
      Object.isFrozen(config) && Object.isFrozen(config.uplink.limits) && Object.isFrozen(config.sensors[0]),
    );
    assert.throws(() => {
      (config.gateway as { id: string }).id = 'x';
    }, TypeError);
  });

  it('hashes the overrides (a remote overlay) with the file, in any key order; none leaves the hash of the file', async () => {
    const plain = await site.load(BASE);
    // The hash of the file and its (absent) profile, exactly as before overlays counted.
    const fileOnly = createHash('sha256').update(BASE).update('\0').update('null').digest('hex').slice(0, 12);
    assert.equal(plain.hash, fileOnly);
    assert.equal((await site.load(BASE, { overrides: {} })).hash, fileOnly);
    const a = await site.load(BASE, { overrides: { 'queue.flush': '5s', 'log.level': 'debug' } });
    const b = await site.load(BASE, { overrides: { 'log.level': 'debug', 'queue.flush': '5s' } });
    const c = await site.load(BASE, { overrides: { 'queue.flush': '6s', 'log.level': 'debug' } });
    assert.notEqual(a.hash, fileOnly);
    assert.equal(a.hash, b.hash);
    assert.notEqual(a.hash, c.hash);
  });

  it('applies overrides to the document before validation', async () => {
    const yaml =
      BASE +
      'buses:\n  plc-sim: { tcp: { host: 127.0.0.1, port: 5020 } }\nsensors:\n  - { id: a, sim: { wave: sine } }\n';
    const { config } = await site.load(yaml, {
      overrides: {
        'uplink.url': 'mqtts://localhost:4567',
        'buses.plc-sim.tcp.port': 6000,
        'sensors.0.every': '5s',
      },
    });
    assert.equal(config.uplink.url, 'mqtts://localhost:4567');
    assert.equal(config.buses['plc-sim']?.tcp?.port, 6000);
    assert.equal(config.sensors[0]?.every, 5000);
    const bad = await site.issues(yaml, { overrides: { 'uplink.url': 'http://x' } });
    assert.deepEqual(
      bad.map((i) => i.path),
      ['uplink.url'],
    );
  });

  it('defaultConfigPath honours EDGEGW_CONFIG', () => {
    const saved = process.env.EDGEGW_CONFIG;
    try {
      delete process.env.EDGEGW_CONFIG;
      assert.equal(defaultConfigPath(), '/etc/edgegw/site.yaml');
      process.env.EDGEGW_CONFIG = '/srv/site.yaml';
      assert.equal(defaultConfigPath(), '/srv/site.yaml');
    } finally {
      if (saved === undefined) delete process.env.EDGEGW_CONFIG;
      else process.env.EDGEGW_CONFIG = saved;
    }
  });

  it('a missing config file is EDGEGW_E_CONFIG_READ, exit 78, naming the file and EDGEGW_CONFIG', async () => {
    const file = join(site.dir, 'nope.yaml');
    await assert.rejects(loadConfig(file), (e: unknown) => {
      assert.ok(e instanceof EdgegwError && !(e instanceof ConfigError));
      assert.equal(e.code, 'EDGEGW_E_CONFIG_READ');
      assert.equal(e.exitCode, 78);
      assert.match(e.message, /nope\.yaml/);
      assert.match(e.message, /EDGEGW_CONFIG/);
      return true;
    });
  });

  it('warns (and still loads) when names look like personal data', async () => {
    const yaml =
      BASE.replace('id: gw1', 'id: gw-4915112345678').replace(
        '  key: key.pem\n',
        '  key: key.pem\n  topic: dt/alice@example.com/{gateway}\n',
      ) +
      'sensors:\n  - { id: tel-030-1234-5678, sim: { wave: sine } }\n  - { id: boiler-2024, sim: { wave: sine } }\n';
    const { warnings } = await site.load(yaml);
    assert.deepEqual(
      warnings.map((w) => [w.path, w.line, w.col, w.severity]),
      [
        ['gateway.id', 2, 7, 'warning'],
        ['uplink.topic', 8, 10, 'warning'],
        ['sensors[0].id', 12, 11, 'warning'],
      ],
    );
    assert.match(warnings[0]!.message, /phone number.*billing and diagnostic logs/);
    assert.match(warnings[1]!.message, /e-mail address/);
  });

  describe('board profiles', () => {
    const pi = BASE.replace('  id: gw1\n', '  id: gw1\n  profile: raspberry-pi-4\n');

    it('rewrites rtu.port aliases to device paths; absolute paths pass through', async () => {
      const yaml = pi + 'buses:\n  a: { rtu: { port: serial0 } }\n  b: { rtu: { port: /dev/ttyACM0 } }\n';
      const loaded = await site.load(yaml);
      assert.equal(loaded.profile?.name, 'raspberry-pi-4');
      assert.equal(loaded.config.buses.a?.rtu?.port, '/dev/serial0');
      assert.equal(loaded.config.buses.b?.rtu?.port, '/dev/ttyACM0');
    });

    it('keeps pin names (resolved at run time) and passes numbers through', async () => {
      const yaml = pi + 'sensors:\n  - { id: d, gpio: { pin: GPIO17 } }\n  - { id: e, gpio: { pin: 529 } }\n';
      const { config } = await site.load(yaml);
      assert.deepEqual(
        config.sensors.map((s) => ('gpio' in s ? s.gpio.pin : null)),
        ['GPIO17', 529],
      );
    });

    it('an unknown profile lists the available ones', async () => {
      const yaml = pi.replace('raspberry-pi-4', 'raspbery-pi-4');
      const i = await site.expectOne(yaml, 'gateway.profile', 3, 12, /did you mean `raspberry-pi-4`\?/);
      assert.match(
        i.message,
        /available: beaglebone-black, generic-x86-usb-rs485, raspberry-pi-4, raspberry-pi-5/,
      );
    });

    it('an unknown pin or serial alias, with did-you-mean', async () => {
      await site.expectOne(
        pi + 'sensors:\n  - { id: d, gpio: { pin: GPI017 } }\n',
        'sensors[0].gpio.pin',
        12,
        27,
        /"GPI017" is not a pin of profile raspberry-pi-4; did you mean `GPIO17`\?/,
      );
      await site.expectOne(
        pi + 'buses:\n  a: { rtu: { port: seriall0 } }\n',
        'buses.a.rtu.port',
        12,
        21,
        /did you mean `serial0`\?/,
      );
    });

    it('a pin name or alias without a profile is an error', async () => {
      await site.expectOne(
        BASE + 'sensors:\n  - { id: d, gpio: { pin: GPIO17 } }\n',
        'sensors[0].gpio.pin',
        11,
        27,
        /no profile is set/,
      );
      await site.expectOne(
        BASE + 'buses:\n  a: { rtu: { port: serial0 } }\n',
        'buses.a.rtu.port',
        11,
        21,
        /not an absolute device path/,
      );
    });
  });

  describe('shipped sites', () => {
    it('config/demo.yaml validates in a runtime folder with its PKI files and the demo overrides', async () => {
      const dir = await SiteDir.create([
        'demo-pki/ca.pem',
        'demo-pki/client.pem',
        'demo-pki/client.key',
        'demo-pki/queue.key',
      ]);
      try {
        await copyFile(repoFile('config/demo.yaml'), join(dir.dir, 'site.yaml'));
        const loaded = await loadConfig(join(dir.dir, 'site.yaml'), {
          overrides: { 'uplink.url': 'mqtts://localhost:40123', 'buses.plc-sim.tcp.port': 40124 },
        });
        const c = loaded.config;
        assert.equal(c.gateway.id, 'demo-gw1');
        assert.equal(c.gateway.dataDir, join(dir.dir, 'demo-data'));
        assert.equal(c.uplink.url, 'mqtts://localhost:40123');
        assert.equal(c.uplink.key, join(dir.dir, 'demo-pki/client.key'));
        assert.deepEqual([c.queue.flush, c.queue.durability], [200, 'os']);
        assert.equal(c.status.socket, join(dir.dir, 'demo.sock'));
        assert.deepEqual(c.buses['plc-sim']?.tcp, { host: '127.0.0.1', port: 40124 });
        assert.deepEqual(
          c.sensors.map((s) => [s.id, s.every]),
          [
            ['demo-wave', 100],
            ['demo-counter', 1000],
            ['demo-random', 500],
            ['boiler-temp', 1000],
            ['pump-speed', 1000],
            ['energy-total', 1000],
            ['alarm', 1000],
          ],
        );
        assert.deepEqual(loaded.warnings, []);
      } finally {
        await dir.remove();
      }
    });

    it('config/example.yaml validates (with its files) and sets every option of the schema', async () => {
      const files = [
        'tls/AmazonRootCA1.pem',
        'identity/device.pem.crt',
        'identity/device.private.key',
        'tls/queue.key',
      ];
      const dir = await SiteDir.create(files);
      try {
        // The device identity's folder is absolute (/var/lib/edgegw-identity): here, beside the file.
        const example = await readFile(repoFile('config/example.yaml'), 'utf8');
        assert.match(example, /\/var\/lib\/edgegw-identity\/device\.pem\.crt/);
        await writeFile(
          join(dir.dir, 'site.yaml'),
          example.replaceAll('/var/lib/edgegw-identity/', 'identity/'),
        );
        const loaded = await loadConfig(join(dir.dir, 'site.yaml'));
        assert.deepEqual(loaded.warnings, []);
        assert.equal(loaded.config.buses['rs485-1']?.rtu?.port, '/dev/serial0');
        const kinds: string[] = loaded.config.sensors.map((s) =>
          'bus' in s ? 'bus' : 'gpio' in s ? 'gpio' : 'sim',
        );
        assert.ok(['bus', 'gpio', 'sim'].every((k) => kinds.includes(k)));
        // Every key the README reference lists is written somewhere in the example.
        const written = new Set<string>();
        const walk = (v: unknown, path: string) => {
          if (Array.isArray(v)) v.forEach((x) => walk(x, `${path}[]`));
          else if (v !== null && typeof v === 'object') {
            for (const [k, x] of Object.entries(v)) {
              const p = path === '' ? k : `${path}.${k}`;
              written.add(p);
              walk(x, p);
            }
          }
        };
        const raw = parse(await readFile(repoFile('config/example.yaml'), 'utf8')) as {
          buses: Record<string, unknown>;
        };
        walk({ ...raw, buses: undefined }, '');
        for (const bus of Object.values(raw.buses)) walk(bus, 'buses.<name>');
        const listed = [...renderConfigReference().matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]!);
        assert.ok(listed.length > 40);
        const missing = listed.filter((k) => !written.has(k));
        assert.deepEqual(missing, []);
      } finally {
        await dir.remove();
      }
    });
  });
});
