// The consumer library must be importable without the gateway's runtime: its modules import only
// node: builtins, each other, src/errors.ts (codes only) and src/durable-file.ts (node: only).

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';

const SRC = new URL('../../../../src/', import.meta.url);

function imports(file: URL): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'([^']+)'/gms)].map((m) => m[1]!);
}

describe('consumer library import graph', () => {
  const files = readdirSync(new URL('consumer/', SRC)).filter((f) => f.endsWith('.ts'));

  it('imports only node builtins, its own modules and src/errors.ts', () => {
    assert.ok(files.length >= 5);
    for (const f of files) {
      for (const spec of imports(new URL(`consumer/${f}`, SRC))) {
        const ok =
          spec.startsWith('node:') ||
          /^\.\/[a-z-]+\.js$/.test(spec) ||
          spec === '../errors.js' ||
          spec === '../durable-file.js';
        assert.ok(ok, `src/consumer/${f} imports ${spec}`);
      }
    }
  });

  it('src/errors.ts, which it shares, imports nothing', () => {
    assert.deepEqual(imports(new URL('errors.ts', SRC)), []);
  });

  it('is exported by package.json with its types', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', SRC), 'utf8')) as {
      exports: Record<string, { types: string; default: string }>;
      bin: Record<string, string>;
    };
    assert.deepEqual(pkg.exports['./consumer'], {
      types: './dist/src/consumer/index.d.ts',
      default: './dist/src/consumer/index.js',
    });
    assert.equal(pkg.bin['edgegw'], 'bin/edgegw.js');
  });

  it('resolves by package name and decodes', async () => {
    // A variable specifier: tsc must not resolve the package's own types before dist/ exists.
    const spec = 'edgegw/consumer';
    const lib = (await import(spec)) as typeof import('../../../src/consumer/index.js');
    const m = lib.decodePayload(
      Buffer.from('{"v":1,"gw":"g","ids":["a"],"recs":[{"seq":1,"t0":5,"r":[[0,1,2]]}]}'),
    );
    assert.deepEqual(m.rows, [{ gw: 'g', seq: 1, sensor: 'a', ts: 6, value: 2, quality: 'good' }]);
  });
});
