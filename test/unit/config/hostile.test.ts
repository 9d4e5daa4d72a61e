// Hostile YAML: alias bombs and cycles, and values long enough to make a careless pattern quadratic.
// Each is a config error at file:line:col, found in linear time.

import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { personalData } from '../../../src/config/rules.js';
import { BASE, SiteDir } from './fixture.js';

const BOMB = `x0: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
x1: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
x2: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
x3: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
x4: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
x5: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
x6: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
x7: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
x8: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
`;

/** Milliseconds `f` takes. A generous guard only: the assertions on its result are what count. */
function timed<T>(f: () => T): [T, number] {
  const t = performance.now();
  const out = f();
  return [out, performance.now() - t];
}

describe('hostile config', () => {
  let site: SiteDir;
  beforeEach(async () => {
    site = await SiteDir.create();
  });
  afterEach(async () => {
    await site.remove();
  });

  it('a billion-laughs alias bomb is a config error at its first alias', async () => {
    await site.expectOne(BASE + BOMB, '(yaml)', 11, 9, /aliases here expand past 100 nodes/);
  });

  it('an alias inside its own anchor is a config error, not a stack overflow', async () => {
    await site.expectOne(
      BASE + 'x: &a { b: [1, *a] }\n',
      '(yaml)',
      10,
      16,
      /refers to the node that contains it/,
    );
  });

  it('ordinary anchors shared by many sensors still load', async () => {
    let yaml = BASE + 'buses: { b: { tcp: { host: h } } }\nsensors:\n';
    yaml += '  - { id: s0, bus: b, table: input, address: 0, every: &every 500ms }\n';
    for (let i = 1; i < 60; i++)
      yaml += `  - { id: s${i}, bus: b, table: input, address: ${i}, every: *every }\n`;
    const { config } = await site.load(yaml);
    assert.equal(config.sensors.length, 60);
    assert.ok(config.sensors.every((s) => s.every === 500));
  });

  it('a 100 KB topic is refused quickly, by length, at its line', async () => {
    const topic = 'a'.repeat(100_000);
    const yaml = BASE.replace('  key: key.pem\n', `  key: key.pem\n  topic: ${topic}\n`);
    const t = performance.now();
    const issues = await site.issues(yaml);
    const ms = performance.now() - t;
    const mine = issues.filter((i) => i.path === 'uplink.topic');
    assert.ok(
      mine.some((i) => /100000 characters is too long: at most 1024/.test(i.message)),
      JSON.stringify(mine),
    );
    assert.ok(mine.every((i) => i.line === 8 && i.col === 10 && i.message.length < 300));
    assert.ok(ms < 2000, `${ms} ms`);
  });

  it('the personal-data patterns are linear: 1 MB adversarial texts in well under a second', () => {
    const n = 1_000_000;
    const texts = [
      'a'.repeat(n),
      'a@'.repeat(n / 2),
      'a'.repeat(n / 2) + '@' + 'b'.repeat(n / 2),
      'a@' + 'b.'.repeat(n / 2),
      '1'.repeat(n),
      '1 '.repeat(n / 2),
    ];
    for (const text of texts) {
      const [kind, ms] = timed(() => personalData(text));
      assert.ok(ms < 1000, `${ms} ms for ${text.slice(0, 8)}…`);
      if (text.startsWith('a@b')) assert.equal(kind, 'an e-mail address');
      if (text === texts[0]) assert.equal(kind, undefined);
    }
    // Still finds what it is for, at either end of a long text.
    assert.equal(personalData('x'.repeat(n) + ' ops@example.com'), 'an e-mail address');
    assert.equal(personalData('jane.doe@plant.example.co.uk/gw'), 'an e-mail address');
    assert.equal(personalData('site-+44 20 7946 0958'), 'a phone number');
    assert.equal(personalData('@@ops@example.com'), 'an e-mail address');
    assert.equal(personalData('dt/edgegw/site-042-gw1/telemetry'), undefined);
    assert.equal(personalData('a@b'), undefined);
  });

  it('a topic with an e-mail address still warns', async () => {
    const { warnings } = await site.load(
      BASE.replace('  key: key.pem\n', '  key: key.pem\n  topic: "@x/jo@plant.example/{gateway}"\n'),
    );
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!.message, /e-mail address/);
  });
});
