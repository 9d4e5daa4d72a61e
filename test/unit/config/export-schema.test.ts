// The generated files are current, and check-config output is redacted.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import {
  README_FILE,
  SCHEMA_FILE,
  renderConfigReference,
  renderJsonSchema,
  spliceReadme,
} from '../../../src/config/export-schema.js';
import { maskUserinfo, renderResolvedConfig, secretPaths } from '../../../src/config/redact.js';
import { BASE, SiteDir } from './fixture.js';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('../../../src/config/export-schema.js', import.meta.url));

describe('schema export', () => {
  it('`export-schema --check` passes: site.schema.json and the README reference are current', async () => {
    const r = await run(process.execPath, [SCRIPT, '--check']);
    assert.equal(r.stderr, '');
    assert.equal(readFileSync(SCHEMA_FILE, 'utf8'), renderJsonSchema());
    assert.ok(readFileSync(README_FILE, 'utf8').includes(renderConfigReference()));
  });

  it('--check exits 1 naming the stale files and writes nothing; a plain run fixes them', async () => {
    // A copy of the compiled config modules in a scratch tree, so the real files are never touched.
    const tmp = await mkdtemp(join(tmpdir(), 'edgegw-export-'));
    try {
      const distDir = join(tmp, 'dist/src/config');
      await mkdir(distDir, { recursive: true });
      for (const f of ['export-schema.js', 'schema.js', 'units.js'])
        await copyFile(join(dirname(SCRIPT), f), join(distDir, f));
      await copyFile(join(dirname(SCRIPT), '../package-root.js'), join(tmp, 'dist/src/package-root.js'));
      await writeFile(join(tmp, 'package.json'), '{}\n'); // the scratch tree's root (package-root.ts)
      await symlink(join(dirname(SCRIPT), '../../../node_modules'), join(tmp, 'node_modules'));
      await mkdir(join(tmp, 'config'));
      const readme =
        '# x\n<!-- BEGIN config-reference (generated) -->\nold\n<!-- END config-reference -->\ntail\n';
      await writeFile(join(tmp, 'README.md'), readme);
      const script = join(distDir, 'export-schema.js');
      const failed = await run(process.execPath, [script, '--check']).catch(
        (e: { code: number; stderr: string }) => e,
      );
      assert.equal('code' in failed ? failed.code : 0, 1);
      assert.match(failed.stderr, /site\.schema\.json is stale/);
      assert.match(failed.stderr, /README\.md is stale/);
      assert.equal(await readFile(join(tmp, 'README.md'), 'utf8'), readme);
      await run(process.execPath, [script]);
      const fixed = await readFile(join(tmp, 'README.md'), 'utf8');
      assert.ok(fixed.startsWith('# x\n<!-- BEGIN config-reference (generated) -->\n'));
      assert.ok(fixed.includes('| `gateway.id` | string | **required** |'));
      assert.ok(fixed.endsWith('<!-- END config-reference -->\ntail\n'));
      await run(process.execPath, [script, '--check']);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
    assert.throws(() => spliceReadme('no markers', 'x'), /config-reference/);
  });

  it('the JSON schema leaves defaulted keys optional and keeps the secret marks', () => {
    const s = JSON.parse(renderJsonSchema()) as {
      required: string[];
      properties: { uplink: { required: string[]; properties: { key: { secret: boolean } } } };
    };
    assert.deepEqual(s.required, ['gateway', 'uplink', 'queue']);
    assert.deepEqual(s.properties.uplink.required, ['url', 'ca', 'cert', 'key']);
    assert.equal(s.properties.uplink.properties.key.secret, true);
  });
});

describe('renderResolvedConfig', () => {
  let site: SiteDir;
  beforeEach(async () => {
    site = await SiteDir.create();
  });
  afterEach(async () => {
    await site.remove();
  });

  it('shows durations and sizes as written, absolute paths, and marks secret files', async () => {
    await site.write('key.pem', '-----BEGIN PRIVATE KEY-----\nTOPSECRET\n');
    const loaded = await site.load(
      BASE + '  flush: 1500ms\nsensors:\n  - { id: w, sim: { wave: sine }, every: 100ms }\n',
    );
    const text = renderResolvedConfig(loaded);
    const back = parse(text) as {
      queue: { flush: string; maxBytes: string; keyFile: string };
      uplink: { key: string };
    };
    assert.equal(back.queue.flush, '1500ms');
    assert.equal(back.queue.maxBytes, '256MiB');
    assert.equal(back.uplink.key, `${site.dir}/key.pem`);
    assert.match(text, /key: \S+key\.pem # secret file, contents not shown/);
    assert.match(text, /keyFile: \S+queue\.key # secret file, contents not shown/);
    assert.doesNotMatch(text, /TOPSECRET/);
    assert.deepEqual(secretPaths(), [
      ['uplink', 'key'],
      ['queue', 'keyFile'],
      ['queue', 'previousKeyFiles'],
    ]);
  });

  it('masks URL userinfo defensively', () => {
    assert.equal(maskUserinfo('mqtts://u:p4ss@host:8883/x'), 'mqtts://***@host:8883/x');
    assert.equal(maskUserinfo('mqtts://host:8883'), 'mqtts://host:8883');
  });
});
