import assert from 'node:assert/strict';
import { createDemoPki } from '../../../src/demo/pki.js';
import { certificateInfo } from '../../../src/uplink/certificate.js';
import { CertificateWatch, WARN_DAYS } from '../../../src/uplink/certificate-watch.js';
import { classifyError } from '../../../src/uplink/errors.js';
import { captureLog } from '../../helpers/queue.js';
import { FakeClock } from '../../helpers/fake-clock.js';

const DAY = 86_400_000;

describe('uplink/certificate-watch', () => {
  const pki = createDemoPki('watch-gw');
  const { notBefore, notAfter } = certificateInfo(pki.clientCert, Date.now());
  /** The certificate's base64 body: must never reach a log line. */
  const body = pki.clientCert.split('\n').find((l) => l.length > 40 && !l.startsWith('-----'))!;

  function watched(at: number) {
    const clock = new FakeClock(at);
    const logs = captureLog();
    const watch = new CertificateWatch(pki.clientCert, clock, logs.log);
    const audits = () => logs.lines.filter((l) => l.audit === 'certificate');
    return { clock, logs, watch, audits };
  }

  it('stays quiet while more than 30 days are left, and says how many', () => {
    const { watch, audits, clock } = watched(notAfter - 100 * DAY);
    watch.start();
    clock.advance(60 * DAY);
    assert.equal(audits().length, 0);
    const info = watch.info()!;
    assert.equal(info.state, 'valid');
    assert.equal(info.daysLeft, 40);
    clock.advance(DAY / 2);
    assert.equal(watch.info()!.daysLeft, 39, 'whole days, rounded down');
    watch.stop();
  });

  it('audits once a day while fewer than 30 days are left, then as expired', () => {
    const { watch, audits, clock, logs } = watched(notAfter - (WARN_DAYS + 2) * DAY);
    watch.start();
    assert.equal(audits().length, 0);
    clock.advance(3 * DAY); // days left: 31, 30, 29 → one audit, at 29
    assert.equal(audits().length, 1);
    assert.equal(audits()[0]!.problem, 'expiring');
    assert.equal(audits()[0]!.daysLeft, WARN_DAYS - 1);
    clock.advance(DAY / 2);
    assert.equal(audits().length, 1, 'not more than once a day');
    clock.advance(30 * DAY);
    const all = audits();
    assert.equal(all.length, 31, 'one a day');
    assert.equal(all[all.length - 1]!.problem, 'expired');
    assert.equal(watch.info()!.state, 'expired');
    assert.ok(!logs.text().includes(body), 'no certificate in the log');
    watch.stop();
    clock.advance(5 * DAY);
    assert.equal(audits().length, 31, 'stop() ends the daily check');
  });

  it('audits at start a certificate that is not valid yet (a wrong clock) or expired', () => {
    for (const [at, problem] of [
      [notBefore - 2 * DAY, 'not-yet-valid'],
      [notAfter + DAY, 'expired'],
    ] as const) {
      const { watch, audits } = watched(at);
      watch.start();
      assert.equal(audits().length, 1, problem);
      assert.equal(audits()[0]!.problem, problem);
      assert.equal(audits()[0]!.level, 40, 'also a warning');
      assert.match(String(audits()[0]!.notAfter), /^\d{4}-\d\d-\d\dT/);
      watch.stop();
    }
  });

  it('reports a certificate not valid yet as a probable clock problem, not a broken certificate', () => {
    const { watch, audits } = watched(notBefore - 2 * DAY);
    watch.start();
    const [entry] = audits();
    assert.equal(entry!.probableCause, 'clock');
    assert.match(String(entry!.msg), /probably a clock problem, not a broken certificate/);
    assert.match(String(entry!.msg), /not valid until \d{4}-\d\d-\d\dT.* by this gateway's clock/);
    watch.stop();
    const expired = watched(notAfter + DAY);
    expired.watch.start();
    assert.equal(expired.audits()[0]!.probableCause, undefined, 'an expired one is not blamed on the clock');
    expired.watch.stop();
  });

  it('audits a TLS refusal on a certificate once until a connection succeeds, other errors never', () => {
    const { watch, audits } = watched(Date.now());
    const refused = Object.assign(new Error('self-signed certificate in certificate chain'), {
      code: 'SELF_SIGNED_CERT_IN_CHAIN',
    });
    const reason = classifyError(refused);
    assert.match(reason, /^EDGEGW_E_UPLINK_TLS_CA: /);
    watch.failed(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), 'x');
    assert.equal(audits().length, 0);
    for (let i = 0; i < 5; i++) watch.failed(refused, reason);
    assert.equal(audits().length, 1);
    assert.equal(audits()[0]!.reason, reason);
    assert.equal(audits()[0]!.code, 'EDGEGW_E_UPLINK_TLS_CA', 'the class code, not a generic one');
    watch.connected();
    watch.failed(refused, reason);
    assert.equal(audits().length, 2);
    // An expired broker certificate: the text shows the clock, so it changes at every attempt; the
    // class is audited once all the same.
    const expired = Object.assign(new Error('certificate has expired'), { code: 'CERT_HAS_EXPIRED' });
    for (let i = 0; i < 3; i++) watch.failed(expired, classifyError(expired, { now: Date.now() + i * 1000 }));
    assert.equal(audits().length, 3);
    assert.equal(audits()[2]!.code, 'EDGEGW_E_UPLINK_TLS_EXPIRED');
  });

  it('an unparsable certificate gives no info (TLS says why) and no audit', () => {
    const clock = new FakeClock(Date.now());
    const logs = captureLog();
    const watch = new CertificateWatch('not a certificate', clock, logs.log);
    watch.start();
    assert.equal(watch.info(), null);
    assert.equal(logs.lines.length, 0);
    watch.stop();
  });

  it('reports the new certificate after a reload replaced it', () => {
    const renewed = createDemoPki('watch-gw', { clientValidity: { fromDays: -1, toDays: 800 } });
    const { watch } = watched(Date.now());
    const before = watch.info()!.daysLeft;
    watch.replace(renewed.clientCert);
    const after = watch.info()!.daysLeft;
    assert.ok(before <= 365 && after >= 799, `days left ${before} -> ${after}`);
  });
});
