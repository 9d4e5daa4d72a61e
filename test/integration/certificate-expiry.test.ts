// Expiry that never surprises (identity issue), with device certificates from the site's real test
// CA made to expire in 10 and in 3 days: `edgegw doctor` WARNs (10) and FAILs (3) on the days left,
// and the running daemon, still connected, shows the days left in `status`, the expiry in the
// Prometheus gauge, and writes the `certificate` audit entry.

import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { issueClientCertificate } from '../../src/demo/pki.js';
import type { CheckLine } from '../../src/doctor/check.js';
import { runCli, startCli } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';
import { makeSite, waitFor } from '../helpers/site.js';

describe('certificate expiry in 10 and 3 days (child processes)', function () {
  this.timeout(60_000);

  for (const [days, result] of [
    [10, 'WARN'],
    [3, 'FAIL'],
  ] as const) {
    it(`${days} days left: doctor ${result}, status, metrics gauge and audit entry`, async () => {
      const port = await freePort();
      const site = await makeSite({ logLevel: 'info' });
      const bin = await mkdtemp(join(tmpdir(), 'edgegw-expiry-bin-'));
      try {
        const made = issueClientCertificate(site.pki, 'test-gw1', { fromDays: -1, toDays: days });
        await writeFile(join(site.dir, 'pki', 'client.pem'), made.cert);
        await writeFile(join(site.dir, 'pki', 'client.key'), made.key, { mode: 0o600 });
        const yaml = await readFile(site.configFile, 'utf8');
        await writeFile(
          site.configFile,
          yaml.replace('  socket: ./status.sock', `  socket: ./status.sock\n  metrics: 127.0.0.1:${port}`),
        );
        // No systemd here: a timedatectl stand-in answers as a synchronised gateway's does.
        await writeFile(join(bin, 'timedatectl'), '#!/bin/sh\nprintf "NTP=yes\\nNTPSynchronized=yes\\n"\n');
        await chmod(join(bin, 'timedatectl'), 0o755);
        const env = { PATH: `${bin}${delimiter}${process.env.PATH ?? ''}` };

        const d = await runCli(['doctor', '--json', '-c', site.configFile], env);
        const lines = JSON.parse(d.stdout) as CheckLine[];
        const left = lines.find((l) => l.check === 'certificate days left')!;
        assert.equal(left.result, result);
        assert.match(left.found, new RegExp(`^${days - 1} days left`));
        assert.match(left.fix, /rotate-certificate/);
        assert.equal(d.code, result === 'FAIL' ? 1 : 0, d.stdout);

        const { child, done } = startCli(['run', '-c', site.configFile]);
        let out = '';
        child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
        try {
          let status: {
            uplink: { state: string };
            certificate: { daysLeft: number; state: string; warning: boolean };
          } | null = null;
          await waitFor(
            async () => {
              const s = await runCli(['status', '--json', '-c', site.configFile]);
              if (s.code !== 0) return false;
              status = JSON.parse(s.stdout) as typeof status;
              return status!.uplink.state === 'connected';
            },
            20_000,
            'the daemon connected on the expiring certificate',
            200,
          );
          assert.equal(status!.certificate.daysLeft, days - 1);
          assert.equal(status!.certificate.state, 'valid');
          assert.equal(status!.certificate.warning, true);
          const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
          const gauge = /^edgegw_certificate_expiry_timestamp_seconds (\S+)$/m.exec(metrics);
          assert.ok(gauge, metrics);
          const notAfter = Date.parse(new X509Certificate(made.cert).validTo) / 1000;
          assert.equal(Number(gauge[1]), notAfter);
          const entry = out.split('\n').find((l) => l.includes('"audit":"certificate"'));
          assert.ok(entry, out);
          assert.match(entry, /"problem":"expiring"/);
          assert.match(entry, new RegExp(`"daysLeft":${days - 1}`));
        } finally {
          child.kill('SIGTERM');
          await done;
        }
      } finally {
        await site.cleanup();
        await rm(bin, { recursive: true, force: true });
      }
    });
  }
});
