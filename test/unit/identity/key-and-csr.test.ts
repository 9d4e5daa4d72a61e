// The key and CSR a provision or a rotation makes: the CSR is signed by the new key and names the
// gateway, and making the key leaves the event loop free (a rotation runs inside the daemon, whose
// sensors and uplink must not stall for the seconds RSA generation takes on an ARM core).

import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import forge from 'node-forge';
import { newKeyAndCsr } from '../../../src/identity/fleet.js';

describe('newKeyAndCsr', () => {
  it('makes an RSA 2048 key and a CSR signed by it for the common name', async () => {
    const { key, csr } = await newKeyAndCsr('gw-17');
    const req = forge.pki.certificationRequestFromPem(csr);
    assert.ok(req.verify(), 'the CSR is signed by its own key');
    assert.equal(req.subject.getField('CN')?.value, 'gw-17');
    const priv = createPrivateKey(key);
    assert.equal(priv.asymmetricKeyDetails?.modulusLength, 2048);
    const fromCsr = createPublicKey(forge.pki.publicKeyToPem(req.publicKey as forge.pki.rsa.PublicKey));
    assert.equal(
      createPublicKey(priv).export({ type: 'spki', format: 'pem' }),
      fromCsr.export({ type: 'spki', format: 'pem' }),
      'the CSR carries the new key',
    );
  });

  it('leaves the event loop free while the key is made', async () => {
    let ticks = 0;
    const timer = setInterval(() => (ticks += 1), 1);
    try {
      await newKeyAndCsr('gw-17');
    } finally {
      clearInterval(timer);
    }
    assert.ok(ticks > 0, 'timers ran while the key was made');
  });
});
