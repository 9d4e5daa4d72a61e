import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EdgegwError, Exit } from '../../../src/errors.js';
import { assertPrivateFile, readQueueKey, writeNewKeyFile } from '../../../src/seal/keyfile.js';

function isEdgegw(code: string, exit: number, text?: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof EdgegwError, `expected an EdgegwError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.equal(err.exitCode, exit);
    if (text !== undefined) assert.match(err.message, text);
    return true;
  };
}

describe('seal/keyfile', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edgegw-key-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  describe('writeNewKeyFile', () => {
    it('writes 32 random bytes with mode 0600, even under a permissive umask', async () => {
      const old = process.umask(0);
      try {
        await writeNewKeyFile(join(dir, 'a.key'));
      } finally {
        process.umask(old);
      }
      await writeNewKeyFile(join(dir, 'b.key'));
      const a = await readFile(join(dir, 'a.key'));
      const b = await readFile(join(dir, 'b.key'));
      assert.equal(a.length, 32);
      assert.notDeepEqual(a, b, 'two keys differ');
      assert.equal((await stat(join(dir, 'a.key'))).mode & 0o777, 0o600);
      assert.equal((await stat(join(dir, 'b.key'))).mode & 0o777, 0o600);
    });

    it('never overwrites an existing file (exit 73, names the file)', async () => {
      const file = join(dir, 'queue.key');
      await writeFile(file, 'keep me');
      await assert.rejects(
        writeNewKeyFile(file),
        isEdgegw('EDGEGW_E_KEY_EXISTS', Exit.CANTCREAT, new RegExp(file.replace(/[.]/g, '\\.'))),
      );
      assert.equal(await readFile(file, 'utf8'), 'keep me');
    });

    it('says to create a missing folder (exit 73)', async () => {
      const file = join(dir, 'nope', 'queue.key');
      await assert.rejects(writeNewKeyFile(file), (err: unknown) => {
        assert.ok(err instanceof EdgegwError);
        assert.equal(err.exitCode, Exit.CANTCREAT);
        assert.match(err.message, /does not exist\. Fix: mkdir -p .*nope/);
        return true;
      });
    });

    it('reports a folder it may not write to (exit 73, permission denied)', async () => {
      const locked = join(dir, 'locked');
      const { mkdir } = await import('node:fs/promises');
      await mkdir(locked, { mode: 0o755 });
      const target = join(locked, 'queue.key');
      if (process.getuid?.() === 0) {
        // root ignores permissions: try as nobody in a child process.
        await chmod(dir, 0o755);
        const here = fileURLToPath(import.meta.url);
        const keyfile = resolve(here, '../../../../src/seal/keyfile.js');
        const script =
          `import(${JSON.stringify(keyfile)}).then(m => m.writeNewKeyFile(${JSON.stringify(target)}))` +
          `.then(() => console.log('created'), e => console.log(JSON.stringify({ exit: e.exitCode, message: e.message })))`;
        const r = spawnSync(process.execPath, ['-e', script], { uid: 65534, gid: 65534, encoding: 'utf8' });
        const out = JSON.parse(r.stdout.trim()) as { exit: number; message: string };
        assert.equal(out.exit, Exit.CANTCREAT);
        assert.match(out.message, /permission denied/);
      } else {
        await chmod(locked, 0o555);
        await assert.rejects(writeNewKeyFile(target), (err: unknown) => {
          assert.ok(err instanceof EdgegwError);
          assert.equal(err.exitCode, Exit.CANTCREAT);
          assert.match(err.message, /permission denied/);
          return true;
        });
      }
      await assert.rejects(stat(target), 'no key file was created');
    });
  });

  describe('assertPrivateFile', () => {
    for (const mode of [0o644, 0o640, 0o604, 0o620, 0o660]) {
      it(`refuses mode 0${mode.toString(8)} with exit 77 and the fix`, async () => {
        const file = join(dir, 'k');
        await writeFile(file, 'x');
        await chmod(file, mode);
        const octal = `0${mode.toString(8)}`;
        await assert.rejects(assertPrivateFile(file, 'queue key file'), (err: unknown) => {
          assert.ok(err instanceof EdgegwError);
          assert.equal(err.code, 'EDGEGW_E_KEY_PERMS');
          assert.equal(err.exitCode, Exit.NOPERM);
          assert.equal(
            err.message,
            `queue key file ${file} has mode ${octal}: group or others may read it. Fix: chmod 600 ${file}`,
          );
          return true;
        });
      });
    }

    for (const mode of [0o600, 0o400]) {
      it(`accepts mode 0${mode.toString(8)}`, async () => {
        const file = join(dir, 'k');
        await writeFile(file, 'x');
        await chmod(file, mode);
        await assertPrivateFile(file, 'TLS private key');
      });
    }

    it('reports a missing file as a configuration error', async () => {
      await assert.rejects(
        assertPrivateFile(join(dir, 'missing'), 'TLS private key'),
        isEdgegw('EDGEGW_E_KEY_READ', Exit.CONFIG, /ENOENT/),
      );
    });
  });

  describe('readQueueKey', () => {
    it('returns the 32 bytes keygen wrote', async () => {
      const file = join(dir, 'queue.key');
      await writeNewKeyFile(file);
      const key = await readQueueKey(file);
      assert.equal(key.length, 32);
      assert.deepEqual(Buffer.from(key), await readFile(file));
    });

    it('refuses a file of the wrong length without echoing its bytes', async () => {
      const file = join(dir, 'queue.key');
      await writeFile(file, 'hunter2-not-a-key', { mode: 0o600 });
      await assert.rejects(readQueueKey(file), (err: unknown) => {
        isEdgegw('EDGEGW_E_KEY_READ', Exit.CONFIG, /17 bytes, not 32/)(err);
        assert.doesNotMatch((err as Error).message, /hunter2/);
        return true;
      });
    });

    it('checks permissions before reading', async () => {
      const file = join(dir, 'queue.key');
      await writeNewKeyFile(file);
      await chmod(file, 0o644);
      await assert.rejects(readQueueKey(file), isEdgegw('EDGEGW_E_KEY_PERMS', Exit.NOPERM));
    });
  });
});
