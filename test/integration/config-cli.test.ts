// Configuration `check-config` used to accept but `run` could not survive: each is exit 78 with
// FILE:LINE:COL from both commands now, before anything opens the queue or the network.

import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';

/** 12 lines; cases append from line 13 on. */
const BASE = `gateway:
  id: gw1
  dataDir: ./data
uplink:
  url: mqtts://127.0.0.1:1
  ca: ca.pem
  cert: cert.pem
  key: key.pem
status:
  socket: ./status.sock
queue:
  keyFile: queue.key
`;

/** Billion laughs: 9^7 "lol"s from 60 lines of YAML. */
const ALIAS_BOMB = `x0: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
x1: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
x2: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
x3: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
x4: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
x5: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
x6: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
`;

const cases: [string, string, RegExp][] = [
  [
    'every: 0ms',
    'sensors:\n  - { id: s1, sim: { wave: counter }, every: 0ms }\n',
    /site\.yaml:14:46: sensors\[0\]\.every: "0ms" is outside 10ms\.\.24h/,
  ],
  ['flush: 0ms', '  flush: 0ms\n', /site\.yaml:13:10: queue\.flush: "0ms" is outside 10ms\.\.10s/],
  [
    'every: 720h (past 2^31 ms)',
    'sensors:\n  - { id: s1, sim: { wave: counter }, every: 720h }\n',
    /site\.yaml:14:46: sensors\[0\]\.every: "720h" is outside 10ms\.\.24h/,
  ],
  [
    'backoff.min: 0ms',
    '', // set in BASE below
    /site\.yaml:9:19: uplink\.backoff\.min: "0ms" is outside 100ms\.\.10m/,
  ],
  ['a YAML alias bomb', ALIAS_BOMB, /site\.yaml:14:9: \(yaml\): aliases here expand past 100 nodes/],
  ['a YAML alias cycle', 'x0: &a [1, *a]\n', /site\.yaml:13:12: \(yaml\): this alias refers to the node/],
];

describe('config that run cannot survive (child process)', function () {
  this.timeout(30_000);
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edgegw-config-cli-'));
    for (const f of ['ca.pem', 'cert.pem', 'key.pem', 'queue.key']) {
      await writeFile(join(dir, f), 'not a real file\n', { mode: 0o600 });
    }
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const [what, extra, message] of cases) {
    it(`${what}: check-config and run exit 78 at file:line:col`, async () => {
      const yaml = what.startsWith('backoff')
        ? BASE.replace('  key: key.pem\n', '  key: key.pem\n  backoff: { min: 0ms }\n')
        : BASE + extra;
      const file = join(dir, 'site.yaml');
      await writeFile(file, yaml);
      for (const cmd of ['check-config', 'run']) {
        const r = await runCli([cmd, '-c', file]);
        assert.equal(r.code, 78, `${cmd}: ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, message, cmd);
      }
    });
  }

  it('check-config and run never print a pasted private key, queue key or URL password', async () => {
    const secret = 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7SECRET';
    const yaml = BASE.replace('mqtts://127.0.0.1:1', "'mqtts:gw:PASSWORD@127.0.0.1'")
      .replace(
        '  key: key.pem\n',
        `  key: "-----BEGIN PRIVATE KEY-----\\n${secret}\\n-----END PRIVATE KEY-----"\n`,
      )
      .replace('keyFile: queue.key', 'keyFile: q8Vx3KEYbNf0ZtXyW2k7Lm1Pq9Rs4Tu6Vw8Xy0AaBc=');
    const file = join(dir, 'site.yaml');
    await writeFile(file, yaml);
    for (const cmd of ['check-config', 'run']) {
      const r = await runCli([cmd, '-c', file]);
      assert.equal(r.code, 78, cmd);
      const out = r.stdout + r.stderr;
      assert.equal(out.match(/looks like key material/g)?.length, 2, out);
      assert.match(out, /uplink\.url: the URL carries user:password@/);
      for (const leak of ['PASSWORD', secret, 'MIIE', 'q8Vx3'])
        assert.ok(!out.includes(leak), `${cmd}: ${out}`);
    }
  });
  it('check-config refuses a key file its group or others may read, at its key, as run does; chmod 600 makes it OK', async () => {
    const file = join(dir, 'site.yaml');
    await writeFile(file, BASE);
    await chmod(join(dir, 'key.pem'), 0o644);
    await chmod(join(dir, 'queue.key'), 0o640);
    const r = await runCli(['check-config', '-c', file]);
    assert.equal(r.code, 78, r.stdout + r.stderr);
    const perms = (key: string, line: string, name: string, mode: string) =>
      new RegExp(
        `site\\.yaml:${line}: ${key}: the file \\S*/${name} has mode ${mode}: group or others may read it\\. Fix: chmod 600 \\S*/${name} \\(edgegw run refuses it\\)`,
      );
    assert.match(r.stderr, perms('uplink\\.key', '8:8', 'key\\.pem', '0644'));
    assert.match(r.stderr, perms('queue\\.keyFile', '12:12', 'queue\\.key', '0640'));
    assert.doesNotMatch(r.stderr, /configuration OK/);
    assert.equal(r.stdout, '', 'no resolved configuration for a refused one');

    await chmod(join(dir, 'key.pem'), 0o600);
    await chmod(join(dir, 'queue.key'), 0o400);
    const ok = await runCli(['check-config', '-c', file]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stderr, /configuration OK/);
  });
});
