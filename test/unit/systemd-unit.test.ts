// The systemd unit must agree with the code: the defaults it makes writable, the exit codes that
// need a person rather than a restart, and the notify protocol the daemon speaks.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Value } from '@sinclair/typebox/value';
import { parse as parseYaml } from 'yaml';
import { SiteSchema } from '../../src/config/schema.js';
import { Exit } from '../../src/errors.js';
import { UNIT_ENV, UNIT_NODE_ARGS, unitMemorySettings } from '../../bench/daemon-footprint.js';

const unitPath = fileURLToPath(new URL('../../../systemd/edgegw.service', import.meta.url));
const unit = readFileSync(unitPath, 'utf8');
const examplePath = fileURLToPath(new URL('../../../config/example.yaml', import.meta.url));
/** The ceiling issue 7 sets for `systemd-analyze security` (also checked by .ci/run). */
const MAX_EXPOSURE = 1.5;
const directive = (name: string): string[] =>
  unit
    .split('\n')
    .filter((l) => l.startsWith(`${name}=`))
    .map((l) => l.slice(name.length + 1).trim());

describe('systemd/edgegw.service', () => {
  it('is a notify service with a watchdog, stopped by SIGTERM with time to drain', () => {
    assert.deepEqual(directive('Type'), ['notify']);
    assert.deepEqual(directive('KillSignal'), ['SIGTERM']);
    assert.ok(directive('WatchdogSec').length === 1);
    const stopSec = Number(/^(\d+)s$/.exec(directive('TimeoutStopSec')[0] ?? '')?.[1]);
    assert.ok(stopSec >= 10, 'longer than the daemon’s bounded drain (5 s) plus the commit');
  });

  it('runs `edgegw run` with the default config path', () => {
    assert.match(directive('ExecStart')[0] ?? '', /bin\/edgegw\.js run$/);
    assert.ok(directive('Environment').includes('EDGEGW_CONFIG=/etc/edgegw/site.yaml'));
  });

  it('starts node with the memory flags and environment the bench reads from it and measures', () => {
    const exec = directive('ExecStart')[0] ?? '';
    const flags = exec.split(/\s+/).filter((w) => w.startsWith('--'));
    assert.deepEqual(flags, [...UNIT_NODE_ARGS], 'the bench measures the daemon with every flag of the unit');
    for (const flag of [
      '--max-semi-space-size=1',
      '--v8-pool-size=1',
      '--single-threaded',
      '--bytecode-old-age=1',
      '--heap-growing-percent=20',
    ]) {
      assert.ok(flags.includes(flag), flag);
    }
    assert.deepEqual(UNIT_ENV, {
      MALLOC_ARENA_MAX: '2',
      MALLOC_TRIM_THRESHOLD_: '131072',
      MALLOC_MMAP_THRESHOLD_: '131072',
    });
    for (const [name, value] of Object.entries(UNIT_ENV)) {
      assert.ok(directive('Environment').includes(`${name}=${value}`), `Environment=${name}=${value}`);
    }
    assert.deepEqual(
      unitMemorySettings(
        'Environment=NODE_ENV=x\nEnvironment=MALLOC_ARENA_MAX=4\nExecStart=/usr/bin/node --a=1 --b /x.js run\n',
      ),
      { nodeArgs: ['--a=1', '--b'], env: { MALLOC_ARENA_MAX: '4' } },
    );
  });

  it('starts node with flags this node accepts (a misspelt one would stop the service from starting)', () => {
    // node refuses an unknown node option, and V8 an unknown V8 flag, before running anything.
    const out = execFileSync(process.execPath, [...UNIT_NODE_ARGS, '-e', 'process.stdout.write("ran")'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    assert.equal(out, 'ran');
    assert.throws(
      () => execFileSync(process.execPath, ['--heap-growing-percnt=20', '-e', '0'], { stdio: 'pipe' }),
      /bad option|unrecognized|unknown/i,
      'a misspelt flag is refused: the check above could fail',
    );
  });

  it('does not restart on usage, insecure-key or configuration errors', () => {
    const codes = (directive('RestartPreventExitStatus')[0] ?? '').split(/\s+/).map(Number);
    for (const code of [Exit.USAGE, Exit.NOPERM, Exit.CONFIG]) assert.ok(codes.includes(code), String(code));
  });

  it('makes the default dataDir, status socket folder and the example key and identity folders writable, nothing else', () => {
    const defaults = Value.Default(SiteSchema, { gateway: {}, status: {} }) as {
      gateway: { dataDir: string };
      status: { socket: string };
    };
    const [ours, sysfs, ...more] = directive('ReadWritePaths');
    // The installed site.yaml is config/example.yaml: its rotate-queue-key folder, and the folder of
    // its device certificate and key, which a certificate rotation replaces (both optional: "-").
    const example = parseYaml(readFileSync(examplePath, 'utf8')) as {
      queue: { rotatedKeysDir: string };
      uplink: { cert: string; key: string };
    };
    const identity = dirname(example.uplink.cert);
    assert.equal(dirname(example.uplink.key), identity, 'the certificate and key share their folder');
    assert.ok(!identity.startsWith('/etc/'), `${identity}: /etc is read-only to the service`);
    assert.deepEqual(
      (ours ?? '').split(/\s+/).sort(),
      [
        defaults.gateway.dataDir,
        dirname(defaults.status.socket),
        `-${example.queue.rotatedKeysDir}`,
        `-${identity}`,
      ].sort(),
    );
    // Below a read-only /sys (ProtectKernelTunables), only what sysfs GPIO writes; optional ("-").
    assert.deepEqual((sysfs ?? '').split(/\s+/), ['-/sys/class/gpio', '-/sys/devices']);
    assert.deepEqual(more, []);
    assert.deepEqual(directive('StateDirectory'), ['edgegw']);
    assert.deepEqual(directive('RuntimeDirectory'), ['edgegw']);
    assert.deepEqual(directive('ProtectSystem'), ['strict']);
  });

  it('reloads with SIGHUP to the main process', () => {
    assert.deepEqual(directive('ExecReload'), ['/bin/kill -HUP $MAINPID']);
  });

  it('keeps serial ports and GPIO reachable under the device and capability lockdown', () => {
    assert.deepEqual(directive('DevicePolicy'), ['closed']);
    const allowed = directive('DeviceAllow');
    for (const dev of [
      'char-ttyS rw',
      'char-ttyUSB rw',
      'char-ttyACM rw',
      'char-ttyAMA rw',
      'char-gpiochip rw',
    ]) {
      assert.ok(allowed.includes(dev), dev);
    }
    assert.deepEqual(directive('SupplementaryGroups'), ['dialout gpio']);
    assert.deepEqual(directive('CapabilityBoundingSet'), ['']);
    // Known traps (issue 7): V8's JIT and WebAssembly (libsodium-wrappers) need W^X off; a private
    // /dev has no serial ports.
    assert.deepEqual(directive('MemoryDenyWriteExecute'), []);
    assert.deepEqual(directive('PrivateDevices'), []);
    assert.doesNotMatch(directive('ExecStart')[0] ?? '', /--jitless/);
  });

  it(`scores at most ${MAX_EXPOSURE} in systemd-analyze security (where systemd-analyze is installed)`, function () {
    let out: string;
    try {
      out = execFileSync('systemd-analyze', ['security', '--offline=yes', unitPath], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stdout?: string };
      // Not installed (a developer laptop): .ci/run installs it and checks the same ceiling.
      if (e.code === 'ENOENT') return;
      out = e.stdout ?? '';
    }
    const score = Number(/Overall exposure level for \S+: (\d+(?:\.\d+)?)/.exec(out)?.[1]);
    assert.ok(Number.isFinite(score), `no score in: ${out.slice(-300)}`);
    assert.ok(score <= MAX_EXPOSURE, `exposure ${score} > ${MAX_EXPOSURE}`);
  });
});
