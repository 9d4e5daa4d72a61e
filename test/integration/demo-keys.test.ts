// `edgegw demo` on a terminal: `c` cuts the uplink (the backlog grows on disk), `r` restores it (the
// backlog drains), Ctrl-C (a byte in raw mode) stops cleanly. The terminal is a pseudo-TTY from
// util-linux `script`, which relays this test's writes as key presses.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { BIN } from '../helpers/cli.js';
import { waitFor } from '../helpers/site.js';

const sh = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

interface Live {
  queued: number;
  uplink: string;
  cloud: number;
}

/** The live lines printed so far (the terminal form rewrites one line with \r). */
function liveLines(out: string): Live[] {
  const lines: Live[] = [];
  for (const l of out.split(/[\r\n]+/)) {
    const m = /queued (\d+) .*· uplink (.+?) \d+ msg\/s .*cloud got (\d+)/.exec(l);
    if (m) lines.push({ queued: Number(m[1]), uplink: m[2]!, cloud: Number(m[3]) });
  }
  return lines;
}

describe('edgegw demo keys (child process on a pseudo-terminal)', function () {
  this.timeout(90_000);

  it('cuts the uplink on c (backlog grows), restores it on r (backlog drains), stops on Ctrl-C', async () => {
    const child = spawn('script', ['-qfec', `${sh(process.execPath)} ${sh(BIN)} demo`, '/dev/null'], {
      env: { ...process.env, NOTIFY_SOCKET: '' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      await waitFor(() => out.includes('keys: c cuts the uplink · r restores it'), 30_000, 'the key help');
      await waitFor(() => liveLines(out).some((l) => l.cloud > 0), 30_000, 'a delivered message');
      child.stdin.write('c');
      await waitFor(
        () => liveLines(out).filter((l) => l.uplink.startsWith('CUT') && l.queued > 0).length >= 2,
        30_000,
        'two live lines with the uplink cut and a backlog',
      );
      const cut = liveLines(out).filter((l) => l.uplink.startsWith('CUT'));
      assert.ok(cut.at(-1)!.queued > cut.find((l) => l.queued > 0)!.queued, 'the backlog grows while cut');
      const cloudAtCut = cut.at(-1)!.cloud;
      child.stdin.write('r');
      await waitFor(
        () => {
          const last = liveLines(out).at(-1)!;
          return last.uplink === 'connected' && last.cloud > cloudAtCut && last.queued < cut.at(-1)!.queued;
        },
        30_000,
        'the backlog draining after restore',
      );
      child.stdin.write('\x03');
      assert.equal(await exited, 0, out);
      assert.match(out, /demo stopped cleanly: \d+ readings delivered/);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
