// Meta keys share one LevelDB key space: two features once picked the same byte (the clock ranges
// and the notice totals, both 0x20), so each overwrote the other. All of them now live in keys.ts.

import assert from 'node:assert/strict';
import { META_ALL } from '../../../src/queue/keys.js';

describe('queue meta keys', () => {
  it('are pairwise distinct', () => {
    const seen = new Map<string, string>();
    for (const [name, key] of Object.entries(META_ALL)) {
      const hex = Buffer.from(key).toString('hex');
      assert.equal(seen.get(hex), undefined, `${name} reuses the key of ${seen.get(hex) ?? ''}`);
      seen.set(hex, name);
    }
    assert.ok(seen.size >= 8);
  });
});
