// A new desired document with nothing to apply (src/fleet/change-outcome.ts): its own version's
// outcome, an audit for keys it refuses, and after a restart the outcome already reported is kept.

import assert from 'node:assert/strict';
import { unchangedOutcome } from '../../../src/fleet/change-outcome.js';
import type { RefusedKey } from '../../../src/fleet/settable.js';

const REFUSED: RefusedKey[] = [{ path: 'gateway.id', why: 'not-settable' }];
const base = { version: 7, refused: REFUSED, tried: null, first: false, reported: {} };

describe('the outcome of a desired document with nothing to apply', () => {
  it('only refused keys: refused at its own version, with the paths, audited', () => {
    const o = unchangedOutcome(base);
    assert.equal(o.audited, true);
    assert.deepEqual(
      [o.change?.shadowVersion, o.change?.result, o.change?.keys, o.change?.refused],
      [7, 'refused', [], ['gateway.id (not-settable)']],
    );
  });

  it('after a restart, the same refusal already in reported is kept and not audited again', () => {
    const reported = {
      edgegw: {
        change: {
          shadowVersion: 4,
          result: 'refused',
          keys: [],
          errors: null,
          refused: ['gateway.id (not-settable)'],
          reason: 'r',
        },
      },
    };
    const o = unchangedOutcome({ ...base, first: true, reported });
    assert.equal(o.audited, false);
    assert.equal(o.change?.shadowVersion, 4);
    // Another refused key than the one reported: a new outcome, audited.
    const other = unchangedOutcome({
      ...base,
      first: true,
      reported,
      refused: [{ path: 'uplink.url', why: 'not-settable' }],
    });
    assert.equal(other.audited, true);
    assert.equal(other.change?.shadowVersion, 7);
  });

  it('a refused change repeated with a new refused key keeps its result and says it is not tried again', () => {
    const tried = { hash: 'h', shadowVersion: 5, result: 'reverted' as const, reason: 'broker lost' };
    const o = unchangedOutcome({ ...base, tried });
    assert.equal(o.change?.result, 'reverted');
    assert.match(o.change?.reason ?? '', /broker lost .*version 5: not tried again/);
    // Nothing refused: the revert reported before stands.
    assert.deepEqual(unchangedOutcome({ ...base, tried, refused: [] }), { change: null, audited: false });
  });

  it('nothing refused after a change: this version runs as it is, nothing audited', () => {
    const o = unchangedOutcome({ ...base, refused: [] });
    assert.deepEqual(o, {
      change: { shadowVersion: 7, result: 'applied', keys: [], refused: [] },
      audited: false,
    });
  });
});
