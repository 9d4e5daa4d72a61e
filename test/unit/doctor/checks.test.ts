// The doctor's checks one by one, on real files, with the clock and the commands asked about time
// injected: certificate days left, the clock lines, key folder modes, the data dir, the text format.

import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDemoPki, writeDemoPki } from '../../../src/demo/pki.js';
import type { SiteConfig } from '../../../src/config/schema.js';
import { checkDeviceCertificate } from '../../../src/doctor/certificate.js';
import {
  checkClockPlausible,
  checkClockSync,
  parseAdjtimex,
  parseTimedatectl,
  type CommandRunner,
} from '../../../src/doctor/clock.js';
import { checkIdentityFolders, checkKeyFolders, identityFolderLine } from '../../../src/doctor/keys.js';
import { checkDataDir } from '../../../src/doctor/storage.js';
import { doctorClientId } from '../../../src/doctor/broker.js';
import { formatDoctor } from '../../../src/doctor/format.js';
import { fail, pass, warn } from '../../../src/doctor/check.js';

const DAY = 86_400_000;

/** Only the keys a check reads; the loader's frozen SiteConfig has them all. */
function site(dir: string, extra: { maxBytes?: number; minFreeBytes?: number } = {}): SiteConfig {
  return {
    gateway: { id: 'gw', dataDir: join(dir, 'data') },
    uplink: { cert: join(dir, 'client.pem'), key: join(dir, 'client.key'), ca: join(dir, 'ca.pem') },
    queue: {
      keyFile: join(dir, 'keys', 'queue.key'),
      previousKeyFiles: [],
      maxBytes: extra.maxBytes ?? 1024 * 1024,
      minFreeBytes: extra.minFreeBytes ?? 0,
    },
  } as unknown as SiteConfig;
}

describe('doctor checks', () => {
  let dir: string;
  let notAfter: number;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edgegw-doctor-unit-'));
    const pki = createDemoPki('gw');
    await writeDemoPki(dir, pki);
    notAfter = Date.parse(new X509Certificate(pki.clientCert).validTo);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const daysLeft = async (days: number) =>
    (await checkDeviceCertificate(site(dir), notAfter - days * DAY - 1000)).find(
      (l) => l.check === 'certificate days left',
    );

  it('certificate days left: PASS from 30 days, WARN under 30, FAIL under 7', async () => {
    assert.equal((await daysLeft(45))?.result, 'PASS');
    assert.equal((await daysLeft(30))?.result, 'PASS');
    assert.equal((await daysLeft(29))?.result, 'WARN');
    assert.match((await daysLeft(29))?.found ?? '', /^29 days left/);
    assert.equal((await daysLeft(7))?.result, 'WARN');
    assert.equal((await daysLeft(6))?.result, 'FAIL');
  });

  it('a key that belongs to another certificate: FAIL, without the key in the line', async () => {
    const other = createDemoPki('gw');
    const wrong = join(dir, 'other.key');
    await writeFile(wrong, other.clientKey, { mode: 0o600 });
    const s = { ...site(dir), uplink: { ...site(dir).uplink, key: wrong } };
    const l = (await checkDeviceCertificate(s, Date.now())).find((x) => x.check === 'certificate key');
    assert.equal(l?.result, 'FAIL');
    assert.match(l?.found ?? '', /does not belong to/);
    assert.ok(!JSON.stringify(l).includes(other.clientKey.split('\n')[1]!));
  });

  it('clock: FAIL before the build time, PASS after', () => {
    assert.equal(checkClockPlausible(Date.UTC(1970, 0, 2), Date.UTC(2026, 0, 1)).result, 'FAIL');
    assert.equal(checkClockPlausible(Date.UTC(2026, 0, 2), Date.UTC(2026, 0, 1)).result, 'PASS');
  });

  it('clock sync: timedatectl, then adjtimex, else WARN that it cannot be told', async () => {
    assert.equal(parseTimedatectl('NTP=yes\nNTPSynchronized=yes\n'), 'synchronised');
    assert.equal(parseTimedatectl('NTPSynchronized=no\n'), 'unsynchronised');
    assert.equal(parseAdjtimex('  mode: 0\n  status: 8193\n'), 'synchronised');
    assert.equal(parseAdjtimex('  status: 64\n'), 'unsynchronised');
    const answers =
      (m: Record<string, string | null>): CommandRunner =>
      (cmd) =>
        Promise.resolve(m[cmd] ?? null);
    assert.equal((await checkClockSync(answers({ timedatectl: 'NTPSynchronized=yes\n' }))).result, 'PASS');
    const unsynced = await checkClockSync(answers({ adjtimex: '  status: 64\n' }));
    assert.equal(unsynced.result, 'WARN');
    assert.match(unsynced.found, /not synchronised \(adjtimex\)/);
    const unknown = await checkClockSync(answers({}));
    assert.equal(unknown.result, 'WARN');
    assert.match(unknown.found, /cannot tell/);
  });

  it('key folders: FAIL when anyone may write (no sticky bit), WARN for the group', async () => {
    const keys = join(dir, 'keys');
    await mkdir(keys, { recursive: true });
    await chmod(keys, 0o777);
    const lines = await checkKeyFolders(site(dir));
    const l = lines.find((x) => x.check === `key folder ${keys}`);
    assert.equal(l?.result, 'FAIL');
    assert.equal(l?.fix, `chmod go-w ${keys}`);
    await chmod(keys, 0o770);
    assert.equal(
      (await checkKeyFolders(site(dir))).find((x) => x.check === `key folder ${keys}`)?.result,
      'WARN',
    );
    await chmod(keys, 0o700);
    assert.ok((await checkKeyFolders(site(dir))).every((x) => x.result === 'PASS'));
  });

  it("identity folder: WARN when the key's owner cannot write it, or the unit keeps it read-only", async () => {
    await writeFile(join(dir, 'client.key'), 'k', { mode: 0o600 });
    const own = await checkIdentityFolders(site(dir));
    assert.equal(own.length, 1);
    assert.equal(own[0]?.result, 'PASS');
    assert.equal(own[0]?.check, `identity folder ${dir}`);
    const other = identityFolderLine('/var/lib/x', { uid: 0, mode: 0o40750 }, 998);
    assert.equal(other.result, 'WARN');
    assert.match(other.found, /not writable by the key's owner \(uid 998\)/);
    assert.match(other.fix, /\/var\/lib\/edgegw-identity/);
    const etc = identityFolderLine('/etc/edgegw/tls', { uid: 998, mode: 0o40700 }, 998);
    assert.equal(etc.result, 'WARN');
    assert.match(etc.found, /read-only to the edgegw unit/);
    assert.equal(
      identityFolderLine('/var/lib/edgegw-identity', { uid: 998, mode: 0o40700 }, 998).result,
      'PASS',
    );
  });

  it('data dir: a folder holding something else than a queue FAILs; free space under maxBytes WARNs', async () => {
    const s = site(dir);
    const absent = await checkDataDir(s);
    assert.equal(absent[0]?.result, 'PASS');
    assert.match(absent[0]?.found ?? '', /does not exist yet/);
    await mkdir(s.gateway.dataDir, { recursive: true });
    await writeFile(join(s.gateway.dataDir, 'notes.txt'), 'x');
    const foreign = await checkDataDir(s);
    assert.equal(foreign[0]?.result, 'FAIL');
    assert.match(foreign[0]?.found ?? '', /holds no queue/);
    await rm(join(s.gateway.dataDir, 'notes.txt'));
    const huge = await checkDataDir(site(dir, { maxBytes: 1024 ** 5 }));
    const free = huge.find((l) => l.check === 'data free space');
    assert.equal(free?.result, 'WARN');
    assert.match(free?.fix ?? '', /lower queue\.maxBytes/);
    const reserve = await checkDataDir(site(dir, { minFreeBytes: 1024 ** 5 }));
    assert.equal(reserve.find((l) => l.check === 'data free space')?.result, 'PASS', 'reserve capped at 1/8');
  });

  it("doctor's client id differs from the gateway's and stays within 128 characters", () => {
    assert.equal(doctorClientId('site-042-gw1'), 'site-042-gw1-doctor');
    const long = 'a'.repeat(128);
    assert.equal(doctorClientId(long).length, 128);
    assert.notEqual(doctorClientId(long), long);
  });

  it('text format: one line per check, fix lines for WARN and FAIL, extra lines indented', () => {
    const text = formatDoctor([
      pass('a', 'fine'),
      warn('b', 'meh', 'do b'),
      fail('c', '2 errors:\nf:1:1: x: bad\nf:2:1: y: bad', 'edit'),
    ]);
    assert.equal(
      text,
      [
        'PASS  a: fine',
        'WARN  b: meh',
        '      fix: do b',
        'FAIL  c: 2 errors:',
        '        f:1:1: x: bad',
        '        f:2:1: y: bad',
        '      fix: edit',
        '1 passed, 1 warnings, 1 failed',
        '',
      ].join('\n'),
    );
  });
});
