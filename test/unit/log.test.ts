// Guarantee 6: even a careless log call cannot write reading values, payloads or key material.

import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/log.js';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  return { lines, destination };
}

describe('createLogger', () => {
  it('redacts values, payloads, keys and raw registers, at the top level and one level down', () => {
    const { lines, destination } = capture();
    const log = createLogger({ level: 'info', gateway: 'gw-1', destination });
    log.info(
      {
        sensor: 'boiler-temp',
        value: 21.6,
        payload: '{"v":1}',
        key: 'c2VjcmV0',
        raw: [0x41ac, 0xcccd],
        reading: { value: 99.5, sensor: 'x' },
      },
      'something happened',
    );
    const rec = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.equal(rec.sensor, 'boiler-temp', 'ids are fine');
    assert.equal(rec.gw, 'gw-1');
    assert.equal(rec.level, 'info');
    for (const k of ['value', 'payload', 'key', 'raw']) assert.equal(rec[k], '[redacted]', k);
    assert.deepEqual(rec.reading, { value: '[redacted]', sensor: 'x' });
    // The time and pid are the line's own numbers and may hold any digits (16812 is 0x41ac).
    const own = lines[0]!.replace(/"(time|pid)":\d+,?/g, '');
    assert.doesNotMatch(own, /21\.6|99\.5|c2VjcmV0|16812/);
  });

  it('honours the level', () => {
    const { lines, destination } = capture();
    const log = createLogger({ level: 'warn', destination });
    log.info('quiet');
    log.warn('loud');
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /loud/);
  });
});
