import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, lstat, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createConnection, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import { EdgegwError, Exit } from '../../../src/errors.js';
import { queryStatus, requestReload, requestRotation, StatusServer } from '../../../src/status/server.js';
import type { ReloadOutcome } from '../../../src/reload.js';
import { fixture, T0, tempDir, waitFor } from './support.js';

const silent = pino({ level: 'silent' });

/** Sends raw request text on one connection and collects `lines` reply lines. */
function converse(path: string, text: string, lines: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path);
    let buf = '';
    s.setEncoding('utf8');
    s.on('connect', () => s.write(text));
    s.on('error', reject);
    s.on('data', (chunk: string) => {
      buf += chunk;
      const got = buf.split('\n').filter((l) => l !== '');
      if (got.length >= lines) {
        s.destroy();
        resolve(got);
      }
    });
    s.on('end', () => resolve(buf.split('\n').filter((l) => l !== '')));
  });
}

async function assertUnavailable(p: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof EdgegwError, String(err));
    assert.equal(err.code, 'EDGEGW_E_STATUS_UNAVAILABLE');
    assert.equal(err.exitCode, Exit.UNAVAILABLE);
    assert.equal(err.exitCode, 69);
    assert.match(err.message, message);
    return true;
  });
}

describe('StatusServer and queryStatus', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  const servers: StatusServer[] = [];

  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir());
  });
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.stop();
    await cleanup();
  });

  async function started(socketPath: string) {
    const f = fixture();
    f.model.registerSensors(['boiler-temp', 'door-1']);
    f.model.reading({ sensor: 'boiler-temp', ts: T0, value: 21.6, quality: 'good' });
    const server = new StatusServer({ socketPath, model: f.model, log: silent });
    servers.push(server);
    await server.start();
    return { ...f, server };
  }

  it('answers a status request with the model snapshot, values included', async () => {
    const path = join(dir, 'status.sock');
    const { model } = await started(path);
    const s = await queryStatus(path);
    assert.deepEqual(s, model.snapshot());
    assert.equal(s.sensors[0]!.value, 21.6);
    assert.equal(s.sensors[1]!.value, null);
  });

  it('answers {"cmd":"reload"} with the daemon\'s outcome, in request order on one connection', async () => {
    const path = join(dir, 'status.sock');
    const f = fixture();
    let finish: (r: ReloadOutcome) => void = () => undefined;
    let asked = 0;
    const outcome: ReloadOutcome = {
      applied: true,
      file: '/etc/edgegw/site.yaml',
      changed: ['queue.flush'],
      restartNeeded: [],
      errors: [],
      message: 'reloaded: 1 change(s) applied',
      hash: '0123456789ab',
    };
    const server = new StatusServer({
      socketPath: path,
      model: f.model,
      log: silent,
      reload: () => {
        asked++;
        return new Promise<ReloadOutcome>((resolve) => (finish = resolve));
      },
    });
    servers.push(server);
    await server.start();
    // A status request after a slow reload is answered after it, not before.
    const talk = converse(path, '{"cmd":"reload"}\n{"cmd":"status"}\n', 2);
    await waitFor('the reload request', () => asked === 1);
    finish(outcome);
    const [first, second] = await talk;
    assert.deepEqual(JSON.parse(first!), outcome);
    assert.equal((JSON.parse(second!) as { gateway: string }).gateway, f.model.snapshot().gateway);
    const again = requestReload(path);
    await waitFor('the second reload request', () => asked === 2);
    finish(outcome);
    assert.deepEqual(await again, outcome);
  });

  it('without a reload hook, {"cmd":"reload"} is an unknown command (exit 69 for edgegw reload)', async () => {
    const path = join(dir, 'status.sock');
    await started(path);
    await assertUnavailable(requestReload(path), /refused the request: unknown cmd "reload"; known: status$/);
  });

  it('a rotation still under way when the wait runs out: the daemon runs, the rotation goes on', async () => {
    const path = join(dir, 'status.sock');
    const f = fixture();
    let asked = 0;
    const rotate = () => {
      asked++;
      return new Promise<Record<string, string>>(() => undefined); // still proving
    };
    const server = new StatusServer({ socketPath: path, model: f.model, log: silent, rotate });
    servers.push(server);
    await server.start();
    await assert.rejects(requestRotation(path, 300), (err: unknown) => {
      assert.ok(err instanceof EdgegwError, String(err));
      assert.equal(err.code, 'EDGEGW_E_ROTATION');
      assert.match(err.message, /daemon at \S+ is running, but its certificate rotation had not ended/);
      assert.match(err.message, /still under way .*edgegw status/);
      assert.doesNotMatch(err.message, /is it running/);
      return true;
    });
    assert.equal(asked, 1);
    // With no daemon at all, the answer stays the one for a daemon that is not running.
    await server.stop();
    await assertUnavailable(requestRotation(path, 300), /no edgegw daemon answers/);
  });

  it('creates a missing parent folder with mode 0750 and the socket with mode 0660', async () => {
    const path = join(dir, 'run', 'edgegw', 'status.sock');
    await started(path);
    const folder = await stat(join(dir, 'run', 'edgegw'));
    assert.equal(folder.mode & 0o777 & ~process.umask(), 0o750 & ~process.umask());
    assert.equal(folder.mode & 0o007, 0, 'folder not accessible to others');
    const sock = await lstat(path);
    assert.ok(sock.isSocket());
    assert.equal(sock.mode & 0o777, 0o660);
    // The private folder used for binding is gone.
    assert.deepEqual(await readdir(join(dir, 'run', 'edgegw')), ['status.sock']);
  });

  it('answers several requests on one connection, and errors for unknown or malformed ones', async () => {
    const path = join(dir, 's.sock');
    await started(path);
    const replies = await converse(
      path,
      '{"cmd":"status"}\n{"cmd":"reboot"}\nnot json\n[1]\n{"cmd":"status"}\n',
      5,
    );
    const [a, b, c, d, e] = replies.map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(a!.gateway, 'site-042-gw1');
    assert.match(String(b!.error), /unknown cmd "reboot"; known: status/);
    assert.match(String(c!.error), /JSON lines/);
    assert.match(String(d!.error), /unknown cmd/);
    assert.equal(e!.gateway, 'site-042-gw1');
  });

  it('refuses an over-long request and closes the connection', async () => {
    const path = join(dir, 's.sock');
    await started(path);
    const replies = await converse(path, 'x'.repeat(10_000), 1);
    assert.equal(replies.length, 1);
    assert.match(String((JSON.parse(replies[0]!) as { error: string }).error), /too long/);
  });

  it('replaces a stale socket left by a killed process', async () => {
    const path = join(dir, 'status.sock');
    // A real process listens, then dies by SIGKILL: its socket file stays behind.
    const child = spawn(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`,
    ]);
    await new Promise<void>((resolve, reject) => {
      child.stdout.once('data', () => resolve());
      child.once('error', reject);
    });
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    assert.ok((await lstat(path)).isSocket(), 'stale socket file is there');
    await assertUnavailable(queryStatus(path), /no edgegw daemon answers/);

    await started(path);
    assert.equal((await queryStatus(path)).gateway, 'site-042-gw1');
  });

  it('refuses to start while another daemon answers, and leaves it running', async () => {
    const path = join(dir, 'status.sock');
    await started(path);
    const second = new StatusServer({ socketPath: path, model: fixture().model, log: silent });
    await assertUnavailable(second.start(), /another edgegw is running/);
    assert.equal((await queryStatus(path)).gateway, 'site-042-gw1');
  });

  it('never removes a path that is not a socket', async () => {
    const path = join(dir, 'status.sock');
    await writeFile(path, 'precious');
    const server = new StatusServer({ socketPath: path, model: fixture().model, log: silent });
    await assertUnavailable(server.start(), /is not a socket/);
    assert.equal(await readFile(path, 'utf8'), 'precious');
  });

  it('stop() closes client connections and removes the socket', async () => {
    const path = join(dir, 'status.sock');
    const { server } = await started(path);
    const idle = createConnection(path);
    let closed = false;
    idle.on('close', () => (closed = true));
    idle.on('error', () => undefined);
    await new Promise((r) => idle.once('connect', r));
    await server.stop();
    await waitFor('client closed', () => closed);
    await assert.rejects(lstat(path), { code: 'ENOENT' });
    await server.stop(); // twice is harmless
  });

  it('can start again after a stop', async () => {
    const path = join(dir, 'status.sock');
    const { server } = await started(path);
    await server.stop();
    await server.start();
    assert.equal((await queryStatus(path)).gateway, 'site-042-gw1');
  });

  describe('queryStatus when no daemon answers (exit 69)', () => {
    it('no socket file', async () => {
      const path = join(dir, 'none.sock');
      await assertUnavailable(
        queryStatus(path),
        new RegExp(
          `^no edgegw daemon answers at ${path.replace(/[.]/g, '\\.')} \\(is it running\\? systemctl status edgegw\\)$`,
        ),
      );
    });

    it('a listener that never answers: times out', async () => {
      const path = join(dir, 'mute.sock');
      const mute: Server = createServer(() => undefined);
      await new Promise<void>((r) => mute.listen(path, r));
      try {
        const t = Date.now();
        await assertUnavailable(queryStatus(path, 200), /no edgegw daemon answers/);
        assert.ok(Date.now() - t >= 150);
      } finally {
        mute.close();
      }
    });

    it('a listener that closes without answering', async () => {
      const path = join(dir, 'rude.sock');
      const rude: Server = createServer((s) => s.end());
      await new Promise<void>((r) => rude.listen(path, r));
      try {
        await assertUnavailable(queryStatus(path), /no edgegw daemon answers/);
      } finally {
        rude.close();
      }
    });

    it('an answer that is an error or not a status', async () => {
      const path = join(dir, 'odd.sock');
      const replies = ['{"error":"busy"}\n', 'garbage\n'];
      const odd: Server = createServer((s) => s.end(replies.shift() ?? ''));
      await new Promise<void>((r) => odd.listen(path, r));
      try {
        await assertUnavailable(queryStatus(path), /refused the request: busy/);
        await assertUnavailable(queryStatus(path), /not JSON/);
      } finally {
        odd.close();
      }
    });

    it('a socket the user may not open says permission denied', async () => {
      const path = join(dir, 'status.sock');
      await started(path);
      await chmod(path, 0o600);
      // A real client process; as root it drops to nobody, so the permission check is real.
      const server = new URL('../../../src/status/server.js', import.meta.url).href;
      const script =
        `import(${JSON.stringify(server)}).then((m) => m.queryStatus(${JSON.stringify(path)}))` +
        '.then(() => process.exit(0), (e) => { console.error(e.message); process.exit(e.exitCode); })';
      const root = process.getuid?.() === 0;
      const cmd = root ? 'setpriv' : process.execPath;
      const args = root
        ? ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, '-e', script]
        : ['-e', script];
      const child = spawn(cmd, args);
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const code = await new Promise<number | null>((r) => child.once('exit', r));
      assert.equal(code, 69, err);
      assert.match(err, /permission denied/);
    });
  });
});
