import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { audit } from '../../src/audit.js';
import { createLogger } from '../../src/log.js';

describe('audit trail', () => {
  it('writes an entry with its event even when log.level hides info, and redacts as the log does', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(
          ...chunk
            .toString()
            .split('\n')
            .filter((l) => l !== ''),
        );
        cb();
      },
    });
    const log = createLogger({ level: 'error', destination: sink, gateway: 'gw-a' });
    log.info('an ordinary info line is filtered');
    audit(log, 'reload', { changed: ['queue.flush', 'sensors'], value: 'never shown' }, 'config reloaded');
    assert.equal(lines.length, 1);
    const entry = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.equal(entry.audit, 'reload');
    assert.equal(entry.gw, 'gw-a');
    assert.deepEqual(entry.changed, ['queue.flush', 'sensors']);
    assert.equal(entry.value, '[redacted]');
    assert.equal(entry.msg, 'config reloaded');
  });
});
