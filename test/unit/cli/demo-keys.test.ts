// The demo's key map: which key press cuts, restores and stops.

import assert from 'node:assert/strict';
import { demoKeyAction } from '../../../src/cli/demo-keys.js';

describe('demo keys', () => {
  it('maps c to cut, r to restore, Ctrl-C and Ctrl-D to stop, and ignores the rest', () => {
    assert.equal(demoKeyAction('c'), 'cut');
    assert.equal(demoKeyAction('C'), 'cut');
    assert.equal(demoKeyAction('r'), 'restore');
    assert.equal(demoKeyAction('R'), 'restore');
    assert.equal(demoKeyAction('\x03'), 'stop');
    assert.equal(demoKeyAction('\x04'), 'stop');
    for (const k of ['x', ' ', '\r', 'q', '\x1b']) assert.equal(demoKeyAction(k), null, JSON.stringify(k));
  });
});
