// The README is part of the product: it must list every error code the code can emit.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ErrorCodes, Exit } from '../../src/errors.js';

describe('README', () => {
  const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');

  it('documents every error code of src/errors.ts', () => {
    for (const code of Object.keys(ErrorCodes)) assert.ok(readme.includes(`\`${code}\``), `${code} missing`);
  });

  it('documents every exit code the CLI uses', () => {
    const section = readme.slice(readme.indexOf('### Exit codes'), readme.indexOf('### Error codes'));
    for (const code of Object.values(Exit))
      assert.match(section, new RegExp(`^\\| ${code} \\|`, 'm'), `exit ${code}`);
  });

  it('names the two commands a new user needs', () => {
    assert.match(readme, /npm ci && npm start/);
    assert.match(readme, /npm ci && npm test/);
  });
});
