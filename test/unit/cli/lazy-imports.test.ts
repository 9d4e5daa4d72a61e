// `edgegw run` runs for weeks: what only other commands (or an unset option) need must not sit in
// its RSS. A preload lists every CommonJS module the process loaded (ESM-imported packages such as
// aedes, node-forge and prom-client go through the CommonJS loader too) when it exits.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { runCli } from '../../helpers/cli.js';

const PRELOAD = Buffer.from(
  `import { createRequire } from 'node:module';
const cache = createRequire(process.cwd() + '/').cache;
process.on('exit', () => process.stderr.write('LOADED ' + JSON.stringify(Object.keys(cache)) + '\\n'));`,
).toString('base64');

async function loadedBy(args: string[], bundled = false): Promise<string[]> {
  const r = await runCli(args, {
    NODE_OPTIONS: `--import=data:text/javascript;base64,${PRELOAD}`,
    // Unbundled: packages as their own modules (the bundle is checked from its metafile). Bundled,
    // only the externals (native addons) go through the CommonJS loader.
    EDGEGW_UNBUNDLED: bundled ? '' : '1',
  });
  const line = r.stderr.split('\n').find((l) => l.startsWith('LOADED '));
  assert.ok(line !== undefined, `no module list in stderr: ${r.stderr}`);
  return JSON.parse(line.slice('LOADED '.length)) as string[];
}

const packages = (files: string[]): Set<string> =>
  new Set(files.map((f) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(f)?.[1]).filter((p) => p !== undefined));

describe('lazy imports', function () {
  this.timeout(20_000);

  it('edgegw run loads the daemon without the demo broker, PKI generation or prom-client', async () => {
    const loaded = packages(await loadedBy(['run', '-c', '/nonexistent/site.yaml']));
    // The daemon's own graph was loaded (its Modbus driver is CommonJS): the list is not empty by accident.
    assert.ok(loaded.has('modbus-serial'), `daemon graph not loaded: ${[...loaded].join(', ')}`);
    for (const p of ['aedes', 'node-forge', 'prom-client', 'ajv']) {
      assert.ok(!loaded.has(p), `edgegw run loaded ${p}`);
    }
  });

  it('the bundle keeps it so: run’s chunks hold none of aedes, node-forge, prom-client or ajv', () => {
    // scripts/bundle.mjs writes esbuild's metafile: every output chunk, its inputs and imports.
    const meta = JSON.parse(readFileSync(new URL('../../../bundle/meta.json', import.meta.url), 'utf8')) as {
      outputs: Record<string, { imports: { path: string; kind: string }[]; inputs: Record<string, unknown> }>;
    };
    const outputs = meta.outputs;
    const name = (p: string): string => p.replace(/^.*dist\/bundle\//, '');
    const byName = new Map(Object.entries(outputs).map(([p, o]) => [name(p), o]));
    /** A chunk and everything it imports statically. */
    const closure = (start: string): Set<string> => {
      const seen = new Set<string>();
      const todo = [start];
      while (todo.length > 0) {
        const c = todo.pop()!;
        if (seen.has(c) || !byName.has(c)) continue;
        seen.add(c);
        for (const i of byName.get(c)!.imports) if (i.kind === 'import-statement') todo.push(name(i.path));
      }
      return seen;
    };
    const runChunk = [...byName].find(([, o]) =>
      Object.keys(o.inputs).some((i) => i.endsWith('dist/src/cli/run.js')),
    );
    assert.ok(runChunk !== undefined, 'a chunk holds dist/src/cli/run.js');
    const loaded = new Set([...closure('main.js'), ...closure(runChunk[0])]);
    const inputs = [...loaded].flatMap((c) => Object.keys(byName.get(c)!.inputs));
    assert.ok(
      inputs.some((i) => i.includes('node_modules/mqtt/')),
      'the daemon graph is in run’s chunks',
    );
    for (const p of ['aedes', 'node-forge', 'prom-client', 'ajv']) {
      assert.ok(!inputs.some((i) => i.includes(`node_modules/${p}/`)), `run’s chunks bundle ${p}`);
    }
  });

  it('the bundled daemon loads serialport only for a Modbus RTU bus, not as modbus-serial loads', async () => {
    // scripts/lazy-serialport.cjs stands in for it inside the bundle; the real one is loaded on first use.
    const loaded = packages(await loadedBy(['run', '-c', '/nonexistent/site.yaml'], true));
    assert.ok(
      loaded.has('classic-level'),
      `the bundled daemon graph was not loaded: ${[...loaded].join(', ')}`,
    );
    for (const p of ['serialport', '@serialport/bindings-cpp', '@serialport/stream']) {
      assert.ok(!loaded.has(p), `the bundled edgegw run loaded ${p}`);
    }
  });

  it('lazy-serialport.cjs opens the real serialport on first use', () => {
    const require = createRequire(import.meta.url);
    const lazy = require('../../../../scripts/lazy-serialport.cjs') as {
      SerialPort: new (o: object) => object;
    };
    const real = require('serialport') as { SerialPort: new (o: object) => object };
    const port = new lazy.SerialPort({ path: '/dev/edgegw-no-such-port', baudRate: 9600, autoOpen: false });
    assert.ok(port instanceof real.SerialPort, 'the stand-in returns a real SerialPort');
  });

  it('edgegw --version loads neither the daemon nor a command', async () => {
    const loaded = packages(await loadedBy(['--version']));
    for (const p of ['modbus-serial', 'mqtt', 'classic-level', 'aedes', 'node-forge']) {
      assert.ok(!loaded.has(p), `edgegw --version loaded ${p}`);
    }
  });
});
