// No systemd as PID 1 here (DESIGN.md §8): the test binds the notify datagram socket itself.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { SdNotify } from '../../../src/status/sd-notify.js';
import type { Health } from '../../../src/status/progress.js';
import { createUnixDgramSocket, type UnixDgramSocket } from '../../../src/status/unix-dgram.js';
import { captureLog, tempDir, waitFor } from './support.js';

/** A stand-in for systemd's notify socket: keeps every datagram it receives. */
function listen(path: string): { socket: UnixDgramSocket; got: string[] } {
  const got: string[] = [];
  const socket = createUnixDgramSocket();
  socket.on('message', (msg) => got.push(msg.toString('utf8')));
  const errors: Error[] = [];
  socket.on('error', (err) => errors.push(err));
  socket.bind(path); // reports synchronously
  if (errors[0] !== undefined) throw errors[0];
  return { socket, got };
}

describe('SdNotify', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let systemd: { socket: UnixDgramSocket; got: string[] } | null = null;
  let notify: SdNotify | null = null;

  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir());
  });
  afterEach(async () => {
    await notify?.stop();
    notify = null;
    systemd?.socket.close();
    systemd = null;
    await cleanup();
  });

  it('sends READY=1 with a status line, WATCHDOG=1 at half the interval, STOPPING=1', async () => {
    const path = join(dir, 'notify');
    systemd = listen(path);
    const got = systemd.got;
    notify = new SdNotify({ env: { NOTIFY_SOCKET: path, WATCHDOG_USEC: '200000' } });
    assert.equal(notify.watchdogIntervalMs, 100);
    await notify.start();
    assert.ok(notify.enabled);
    notify.ready('3 sensors');
    await waitFor('READY', () => got.includes('READY=1\nSTATUS=3 sensors'));
    await waitFor('two watchdog pings', () => got.filter((m) => m === 'WATCHDOG=1').length >= 2);
    notify.status('uplink backoff\nsecond line');
    await waitFor('STATUS', () => got.includes('STATUS=uplink backoff second line'));
    notify.stopping();
    await waitFor('STOPPING', () => got.includes('STOPPING=1'));
    assert.ok(got.indexOf('READY=1\nSTATUS=3 sensors') < got.indexOf('STOPPING=1'));

    await notify.stop();
    const after = got.length;
    // Three intervals later nothing more came: stop() ended the watchdog.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(got.length, after);
    notify.ready(); // after stop: a no-op, not a throw
  });

  it('withholds WATCHDOG=1 while the health check finds a stall; STATUS= names it', async () => {
    const path = join(dir, 'notify');
    systemd = listen(path);
    const got = systemd.got;
    const { log, lines } = captureLog();
    let health: Health = { healthy: true, reason: null };
    const asked: number[] = [];
    notify = new SdNotify({
      env: { NOTIFY_SOCKET: path, WATCHDOG_USEC: '100000' },
      log,
      health: { check: (ms) => (asked.push(ms), health) },
      statusText: () => 'connected; backlog 0 readings; dropped 0',
      statusEveryMs: 30,
    });
    await notify.start();
    await waitFor('pings while healthy', () => got.filter((m) => m === 'WATCHDOG=1').length >= 2);
    assert.equal(asked[0], 50, 'asked at the ping interval');
    await waitFor('STATUS', () => got.includes('STATUS=connected; backlog 0 readings; dropped 0'));

    health = { healthy: false, reason: 'batcher: commit overdue by 3.0 s' };
    const stalled =
      'STATUS=STALLED: batcher: commit overdue by 3.0 s; connected; backlog 0 readings; dropped 0';
    await waitFor('the stall in STATUS=', () => got.includes(stalled));
    const pingsAtStall = got.filter((m) => m === 'WATCHDOG=1').length;
    const checksAtStall = asked.length;
    await waitFor('five more checks', () => asked.length >= checksAtStall + 5);
    assert.equal(got.filter((m) => m === 'WATCHDOG=1').length, pingsAtStall, 'no ping while stalled');
    assert.equal(lines.filter((l) => l.includes('EDGEGW_E_WATCHDOG')).length, 1, 'logged once');

    health = { healthy: true, reason: null };
    await waitFor('pings again', () => got.filter((m) => m === 'WATCHDOG=1').length > pingsAtStall);
    assert.ok(lines.some((l) => l.includes('watchdog pings resumed')));
  });

  it('sends a bare READY=1 and no watchdog when WATCHDOG_USEC is unset', async () => {
    const path = join(dir, 'notify');
    systemd = listen(path);
    notify = new SdNotify({ env: { NOTIFY_SOCKET: path } });
    assert.equal(notify.watchdogIntervalMs, null);
    await notify.start();
    notify.ready();
    notify.stopping();
    await waitFor('STOPPING', () => systemd!.got.includes('STOPPING=1'));
    assert.deepEqual(systemd.got, ['READY=1', 'STOPPING=1']);
  });

  it('leaves the watchdog to the process WATCHDOG_PID names', () => {
    const env = { NOTIFY_SOCKET: '/nonexistent', WATCHDOG_USEC: '30000000', WATCHDOG_PID: '4242' };
    assert.equal(new SdNotify({ env, pid: 4242 }).watchdogIntervalMs, 15_000);
    assert.equal(new SdNotify({ env, pid: 4243 }).watchdogIntervalMs, null);
    assert.equal(new SdNotify({ env: { WATCHDOG_USEC: 'soon' } }).watchdogIntervalMs, null);
  });

  it('is a no-op without NOTIFY_SOCKET', async () => {
    notify = new SdNotify({ env: {} });
    await notify.start();
    assert.equal(notify.enabled, false);
    notify.ready('x');
    notify.status('y');
    notify.stopping();
    await notify.stop();
  });

  it('does not support abstract socket names: warns once and stays silent', async () => {
    const { log, lines } = captureLog();
    notify = new SdNotify({ env: { NOTIFY_SOCKET: '@edgegw-test' }, log });
    await notify.start();
    assert.equal(notify.enabled, false);
    notify.ready();
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /abstract NOTIFY_SOCKET names are not supported/);
  });

  it('never throws when systemd is gone; warns once', async () => {
    const { log, lines } = captureLog();
    notify = new SdNotify({ env: { NOTIFY_SOCKET: join(dir, 'gone') }, log });
    await notify.start();
    notify.ready();
    notify.status('still here');
    notify.stopping();
    assert.equal(lines.length, 1, lines.join(''));
    assert.match(lines[0]!, /sd_notify failed/);
  });
});
