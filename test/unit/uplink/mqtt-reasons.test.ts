// MQTT reason codes by name, each mapped to its failure class: what the uplink shows for a
// refused CONNACK, a server DISCONNECT (MQTT 5) and a refused PUBACK.

import assert from 'node:assert/strict';
import { ErrorCodes } from '../../../src/errors.js';
import {
  describeConnack,
  describeDisconnect,
  describePuback,
  reasonName,
} from '../../../src/uplink/mqtt-reasons.js';
import { FailureLatch } from '../../../src/uplink/errors.js';

describe('MQTT reason codes', () => {
  it('describeDisconnect names the reason, with its code in hex, under the class it belongs to', () => {
    assert.deepEqual(describeDisconnect(0x97), {
      code: 'EDGEGW_E_UPLINK_THROTTLED',
      text:
        'EDGEGW_E_UPLINK_THROTTLED: the broker ended the session: Quota exceeded (DISCONNECT 0x97); the ' +
        'uplink backs off and retries; if it persists, check that no other client connects with this ' +
        'gateway id and that uplink.backoff.min and uplink.limits stay within the account quotas',
    });
    for (const rc of [0x89, 0x96, 0x9f])
      assert.equal(describeDisconnect(rc).code, 'EDGEGW_E_UPLINK_THROTTLED');
    const takeover = describeDisconnect(0x8e);
    assert.equal(takeover.code, 'EDGEGW_E_UPLINK_TAKEOVER');
    assert.match(
      takeover.text,
      /Session taken over \(DISCONNECT 0x8E\); another client connected with this gateway id/,
    );
    const tooLarge = describeDisconnect(0x95);
    assert.equal(tooLarge.code, 'EDGEGW_E_UPLINK_DISCONNECTED');
    assert.match(tooLarge.text, /Packet too large \(DISCONNECT 0x95\); .*uplink\.limits\.maxPayloadBytes/);
    assert.match(describeDisconnect(0x87).text, /Not authorized .*iot:Publish on uplink\.topic/);
    assert.match(
      describeDisconnect(0x8d).text,
      /^EDGEGW_E_UPLINK_DISCONNECTED: .*Keep Alive timeout \(DISCONNECT 0x8D\)/,
    );
    assert.equal(
      describeDisconnect(0xfe).text,
      'EDGEGW_E_UPLINK_DISCONNECTED: the broker ended the session: unknown reason (DISCONNECT 0xFE)',
    );
  });

  it('describeConnack: 3.1.1 return codes 1..5 and MQTT 5 codes from 0x80, each by name', () => {
    const names = [
      'Unacceptable protocol version',
      'Identifier rejected',
      'Server unavailable',
      'Bad user name or password',
      'Not authorized',
    ];
    names.forEach((name, i) => {
      const f = describeConnack(i + 1);
      assert.equal(reasonName(i + 1, 4), name);
      assert.ok(
        f.text.startsWith(
          `${f.code}: the broker refused the connection: ${name} (CONNACK return code ${i + 1})`,
        ),
        f.text,
      );
      assert.equal(f.code, i + 1 === 3 ? 'EDGEGW_E_UPLINK_THROTTLED' : 'EDGEGW_E_UPLINK_CONNACK');
    });
    for (const rc of [0x88, 0x89, 0x97, 0x9f])
      assert.equal(describeConnack(rc).code, 'EDGEGW_E_UPLINK_THROTTLED', rc.toString(16));
    for (const rc of [0x80, 0x84, 0x85, 0x86, 0x87, 0x8a, 0x8c, 0x9c, 0x9d]) {
      const f = describeConnack(rc);
      assert.equal(f.code, 'EDGEGW_E_UPLINK_CONNACK');
      assert.ok(
        f.text.includes(`${reasonName(rc, 5)!} (CONNACK 0x${rc.toString(16).toUpperCase()})`),
        f.text,
      );
    }
  });

  it('describePuback: a discarded publish is throttling, other refusals a connection problem', () => {
    assert.deepEqual(describePuback(0x97), {
      code: 'EDGEGW_E_UPLINK_THROTTLED',
      text: 'EDGEGW_E_UPLINK_THROTTLED: the broker refused a publish: Quota exceeded (PUBACK 0x97); the record stays queued and is sent again, slower',
    });
    assert.equal(describePuback(0x96).code, 'EDGEGW_E_UPLINK_THROTTLED');
    assert.match(describePuback(0x87).text, /^EDGEGW_E_UPLINK_CONNECT: .*Not authorized \(PUBACK 0x87\)/);
  });

  it('every code it gives is a documented error code', () => {
    for (let rc = 0; rc < 256; rc++) {
      for (const f of [describeConnack(rc), describeDisconnect(rc), describePuback(rc)]) {
        assert.ok(f.code in ErrorCodes, f.code);
        assert.ok(f.text.startsWith(`${f.code}: `), f.text);
      }
    }
  });

  it('FailureLatch: news once per class until a connection succeeds', () => {
    const latch = new FailureLatch();
    assert.equal(latch.changed('EDGEGW_E_UPLINK_DNS'), true);
    assert.equal(latch.changed('EDGEGW_E_UPLINK_DNS'), false);
    assert.equal(latch.changed('EDGEGW_E_UPLINK_REFUSED'), true);
    assert.equal(latch.changed('EDGEGW_E_UPLINK_DNS'), true);
    latch.reset();
    assert.equal(latch.changed('EDGEGW_E_UPLINK_DNS'), true);
  });
});
