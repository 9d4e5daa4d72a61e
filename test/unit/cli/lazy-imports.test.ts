// `edgegw run` runs for weeks: what only other commands (or an unset option) need must not sit in
// its RSS. A preload lists every CommonJS module the process loaded (ESM-imported packages such as
// aedes, node-forge and prom-client go through the CommonJS loader too) when it exits.

import assert from 'node:assert/strict';
import { runCli } from '../../helpers/cli.js';

const PRELOAD = Buffer.from(
  `import { createRequire } from 'node:module';
const cache = createRequire(process.cwd() + '/').cache;
process.on('exit', () => process.stderr.write('LOADED ' + JSON.stringify(Object.keys(cache)) + '\\n'));`,
).toString('base64');

async function loadedBy(args: string[]): Promise<string[]> {
  const r = await runCli(args, { NODE_OPTIONS: `--import=data:text/javascript;base64,${PRELOAD}` });
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

  it('edgegw --version loads neither the daemon nor a command', async () => {
    const loaded = packages(await loadedBy(['--version']));
    for (const p of ['modbus-serial', 'mqtt', 'classic-level', 'aedes', 'node-forge']) {
      assert.ok(!loaded.has(p), `edgegw --version loaded ${p}`);
    }
  });
});
