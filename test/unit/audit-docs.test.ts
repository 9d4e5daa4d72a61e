// The README's audit table is the list a site's central logging is set up from: it must name
// exactly the events src/audit.ts can emit.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { AuditEvents } from '../../src/audit.js';

describe('README audit trail', () => {
  it('has one row per event of AuditEvents, and no other', () => {
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    const start = readme.indexOf('### Audit trail');
    assert.ok(start > 0, 'README has an Audit trail section');
    const section = readme.slice(start, readme.indexOf('\n#', start + 1));
    const rows = [...section.matchAll(/^\| `([a-z-]+)` \|/gm)].map((m) => m[1]!);
    assert.deepEqual([...rows].sort(), Object.keys(AuditEvents).sort());
    assert.equal(new Set(rows).size, rows.length, 'each event once');
  });
});
