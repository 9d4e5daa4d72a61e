// A temp folder with the files a minimal site names, and helpers to load YAML text from it.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ConfigError, loadConfig, type LoadOptions, type LoadedConfig } from '../../../src/config/load.js';
import type { ConfigIssue } from '../../../src/config/issues.js';

/** A valid site in 9 lines; tests append from line 10 on. */
export const BASE = `gateway:
  id: gw1
uplink:
  url: mqtts://broker.example:8883
  ca: ca.pem
  cert: cert.pem
  key: key.pem
queue:
  keyFile: queue.key
`;

export class SiteDir {
  constructor(readonly dir: string) {}

  static async create(files = ['ca.pem', 'cert.pem', 'key.pem', 'queue.key']): Promise<SiteDir> {
    const d = new SiteDir(await mkdtemp(join(tmpdir(), 'edgegw-config-')));
    for (const f of files) await d.write(f, 'not a real file\n');
    return d;
  }

  async write(rel: string, text: string): Promise<string> {
    const file = join(this.dir, rel);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, text);
    return file;
  }

  async load(yaml: string, opts?: LoadOptions): Promise<LoadedConfig> {
    return loadConfig(await this.write('site.yaml', yaml), opts);
  }

  /** Loads `yaml`, expecting a ConfigError; returns its issues. */
  async issues(yaml: string, opts?: LoadOptions): Promise<readonly ConfigIssue[]> {
    try {
      await this.load(yaml, opts);
    } catch (err) {
      assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
      assert.equal(err.exitCode, 78);
      assert.equal(err.code, 'EDGEGW_E_CONFIG');
      return err.issues;
    }
    assert.fail('expected the configuration to be rejected');
  }

  /** Exactly one error, at line:col, for `path`, whose message matches `message`. */
  async expectOne(
    yaml: string,
    path: string,
    line: number,
    col: number,
    message: RegExp,
  ): Promise<ConfigIssue> {
    const issues = await this.issues(yaml);
    assert.equal(
      issues.length,
      1,
      issues.map((i) => `${i.line}:${i.col} ${i.path}: ${i.message}`).join('\n'),
    );
    const i = issues[0]!;
    assert.deepEqual([i.path, i.line, i.col], [path, line, col], i.message);
    assert.match(i.message, message);
    assert.equal(i.file, join(this.dir, 'site.yaml'));
    return i;
  }

  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
