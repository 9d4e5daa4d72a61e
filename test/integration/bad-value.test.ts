// One sensor whose value cannot be encoded (±Infinity from an overflowing sim span) must not take
// the other sensors' readings with it: they are committed and delivered, and it arrives as bad.

import assert from 'node:assert/strict';
import { startCli } from '../helpers/cli.js';
import { waitFor, type TestSite, subscribedSite } from '../helpers/site.js';

describe('a sensor with a non-finite value (edgegw run)', function () {
  this.timeout(60_000);
  const fixture = subscribedSite({
    sensors:
      '  - { id: counter-1, sim: { wave: counter }, every: 20ms }\n' +
      '  - { id: overflow-1, sim: { wave: sine, min: -1.7e308, max: 1.7e308 }, every: 20ms }',
  });
  let site: TestSite;
  beforeEach(() => {
    site = fixture.site;
  });

  it("commits and delivers the other sensors' readings; the broken one arrives as 0, bad", async () => {
    const { child, done } = startCli(['run', '-c', site.configFile]);
    const readings = fixture.readings;
    const of = (id: string) => readings().filter((r) => r.sensor === id);
    try {
      await waitFor(() => of('counter-1').length >= 20 && of('overflow-1').length >= 5, 20_000, 'readings');
    } finally {
      child.kill('SIGTERM');
    }
    const r = await done;
    assert.equal(r.code, 0, r.stderr);
    assert.ok(of('counter-1').every((x) => x.quality === 'good' && typeof x.value === 'number'));
    assert.deepEqual([...new Set(of('overflow-1').map((x) => `${String(x.value)}/${x.quality}`))], ['0/bad']);
    assert.doesNotMatch(r.stdout + r.stderr, /commit failed/);
  });
});
