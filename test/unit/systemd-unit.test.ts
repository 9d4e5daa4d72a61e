// The systemd unit must agree with the code: the defaults it makes writable, the exit codes that
// need a person rather than a restart, and the notify protocol the daemon speaks.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { SiteSchema } from '../../src/config/schema.js';
import { Exit } from '../../src/errors.js';

const unit = readFileSync(new URL('../../../systemd/edgegw.service', import.meta.url), 'utf8');
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

  it('does not restart on usage, insecure-key or configuration errors', () => {
    const codes = (directive('RestartPreventExitStatus')[0] ?? '').split(/\s+/).map(Number);
    for (const code of [Exit.USAGE, Exit.NOPERM, Exit.CONFIG]) assert.ok(codes.includes(code), String(code));
  });

  it('makes the default dataDir and status socket folder writable and nothing else', () => {
    const defaults = Value.Default(SiteSchema, { gateway: {}, status: {} }) as {
      gateway: { dataDir: string };
      status: { socket: string };
    };
    const writable = (directive('ReadWritePaths')[0] ?? '').split(/\s+/);
    assert.deepEqual(writable.sort(), [defaults.gateway.dataDir, dirname(defaults.status.socket)].sort());
    assert.deepEqual(directive('StateDirectory'), ['edgegw']);
    assert.deepEqual(directive('RuntimeDirectory'), ['edgegw']);
    assert.deepEqual(directive('ProtectSystem'), ['strict']);
  });
});
