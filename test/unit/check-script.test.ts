// `npm run check` must work on a fresh clone: nothing it runs may need a dist/ it did not build.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

describe('npm run check', () => {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    scripts: Record<string, string>;
  };

  it('builds dist/ before any step that runs from it', () => {
    const steps = pkg.scripts.check!.split('&&').map((s) => s.trim());
    const firstDist = steps.findIndex((s) => /\bdist\//.test(s));
    assert.ok(firstDist >= 0, 'check runs the schema export check from dist/');
    const builds = (s: string) =>
      s === 'npm run build' || (/^tsc\b/.test(s) && !/--noEmit/.test(s) && !/--outDir/.test(s));
    const build = steps.findIndex(builds);
    assert.ok(
      build >= 0 && build < firstDist,
      `no build before "${steps[firstDist]}" in: ${pkg.scripts.check}`,
    );
    assert.equal(
      pkg.scripts.build,
      'tsc -p tsconfig.json && node scripts/bundle.mjs',
      'the build writes dist/src/, then the bundle from it',
    );
  });

  it('still type-checks, lints, checks formatting and the generated schema', () => {
    const check = pkg.scripts.check!;
    for (const part of [/npm run build|tsc/, /eslint \./, /prettier --check \./, /export-schema\.js --check/])
      assert.match(check, part);
  });
});
