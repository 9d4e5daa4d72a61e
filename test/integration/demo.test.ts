// `edgegw demo` (what `npm start` runs): readings reach the embedded TLS broker; Ctrl-C is clean.

import assert from 'node:assert/strict';
import { startCli } from '../helpers/cli.js';
import { waitFor } from '../helpers/site.js';

describe('edgegw demo (child process)', function () {
  this.timeout(60_000);

  it('shows readings delivered to the embedded broker and stops cleanly on SIGINT', async () => {
    const { child, done } = startCli(['demo']);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor(
      () => /cloud got [1-9]\d* .*last message: seq \d+/.test(out),
      30_000,
      'a delivered message',
    );
    child.kill('SIGINT');
    const r = await done;
    assert.equal(r.code, 0, r.stderr);
    const m = /demo stopped cleanly: (\d+) readings delivered/.exec(r.stdout);
    assert.ok(m, r.stdout);
    assert.ok(Number(m[1]) > 0);
    assert.match(r.stdout, /boiler-temp|pump-speed|demo-wave|demo-counter|demo-random|energy-total|alarm/);
  });
});
