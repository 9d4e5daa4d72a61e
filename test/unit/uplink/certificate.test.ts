import assert from 'node:assert/strict';
import { createDemoPki } from '../../../src/demo/pki.js';
import { certificateInfo } from '../../../src/uplink/certificate.js';

describe('uplink/certificate', () => {
  const pki = createDemoPki('cert-gw');
  const DAY = 86_400_000;

  it('gives the validity window and whole days left of a valid certificate', () => {
    const now = Date.now();
    const info = certificateInfo(pki.clientCert, now);
    assert.equal(info.state, 'valid');
    assert.ok(info.daysLeft === 364 || info.daysLeft === 365, `daysLeft ${info.daysLeft}`);
    assert.ok(info.notBefore < now && now < info.notAfter);
    assert.match(info.subject, /cert-gw/);
  });

  it('says expired after notAfter and not yet valid before notBefore (often a wrong clock)', () => {
    const info = certificateInfo(pki.clientCert, Date.now());
    const late = certificateInfo(pki.clientCert, info.notAfter + 3 * DAY);
    assert.equal(late.state, 'expired');
    assert.equal(late.daysLeft, -3);
    assert.equal(certificateInfo(pki.clientCert, info.notBefore - 1).state, 'not-yet-valid');
  });

  it('throws on something that is not a certificate', () => {
    assert.throws(() => certificateInfo('not a pem', Date.now()));
  });
});
