// What `edgegw run` keeps in memory that it does not need (issue 9, footprint): mqtt-packet's
// number cache (65,536 Buffers, ~6 MiB of heap, built on the first packet written unless the
// client turns it off). A preload reports the cache's size when the daemon exits.

import assert from 'node:assert/strict';
import { startCli } from '../helpers/cli.js';
import { waitFor, type TestSite, subscribedSite } from '../helpers/site.js';

const PRELOAD = Buffer.from(
  `import { createRequire } from 'node:module';
const require = createRequire(process.cwd() + '/');
process.on('exit', () => {
  const numbers = require.cache[require.resolve('mqtt-packet/numbers.js')];
  const n = numbers === undefined ? -1 : Object.keys(numbers.exports.cache).length;
  process.stderr.write('NUMBER_CACHE ' + n + '\\n');
});`,
).toString('base64');

describe('edgegw run footprint (child process)', function () {
  this.timeout(60_000);
  const fixture = subscribedSite({ sensors: '  - { id: counter-1, sim: { wave: counter }, every: 20ms }' });
  let site: TestSite;
  beforeEach(() => {
    site = fixture.site;
  });

  it('publishes without building mqtt-packet’s 65,536-Buffer number cache', async () => {
    const { child, done } = startCli(['run', '-c', site.configFile], {
      NODE_OPTIONS: `--import=data:text/javascript;base64,${PRELOAD}`,
      EDGEGW_UNBUNDLED: '1', // mqtt-packet as its own module, so the preload can find it
    });
    await waitFor(() => fixture.readings().length >= 20, 20_000, 'readings at the broker');
    child.kill('SIGTERM');
    const r = await done;
    assert.equal(r.code, 0, r.stderr);
    const line = r.stderr.split('\n').find((l) => l.startsWith('NUMBER_CACHE '));
    assert.ok(line !== undefined, r.stderr);
    // -1 would mean mqtt-packet was never loaded: the daemon did publish, so it must be 0.
    assert.equal(Number(line.slice('NUMBER_CACHE '.length)), 0);
  });
});
