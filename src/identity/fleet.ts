// The fleet provisioning calls both `edgegw provision` and a rotation make (../shared/IOTCORE-APIS.md;
// AWS "Device provisioning MQTT API"): CreateCertificateFromCsr (the private key is made here and
// never leaves the gateway), CreateKeysAndCertificate (AWS makes the key), RegisterThing.

import { X509Certificate, createPrivateKey, generateKeyPair } from 'node:crypto';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { EdgegwError } from '../errors.js';
import { ID_PATTERN } from '../config/schema.js';
import { request, stringField, type RequestOptions } from './request.js';

export interface NewIdentity {
  certificateId: string;
  certificatePem: string;
  /** PEM; made here for a CSR, sent by AWS for `certificates/create`. */
  privateKey: string;
  ownershipToken: string;
  fromCsr: boolean;
}

/**
 * A new RSA 2048 key and a CSR for it, its subject CN `commonName` (AWS keeps only the public key).
 * The key is made by Node's crypto off the event loop (seconds on a gateway's ARM core, which a
 * rotation inside the running daemon must not block); node-forge builds and signs the CSR.
 */
export async function newKeyAndCsr(commonName: string): Promise<{ key: string; csr: string }> {
  const { publicKey, privateKey } = await promisify(generateKeyPair)('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.publicKeyFromPem(publicKey);
  csr.setSubject([{ name: 'commonName', value: commonName }]);
  csr.sign(forge.pki.privateKeyFromPem(privateKey), forge.md.sha256.create());
  return { key: privateKey, csr: forge.pki.certificationRequestToPem(csr) };
}

export async function createCertificate(
  opts: RequestOptions,
  how: { csrFor: string } | 'aws-key',
): Promise<NewIdentity> {
  if (how === 'aws-key') {
    const what = 'CreateKeysAndCertificate';
    const r = await request(opts, '$aws/certificates/create/json', {}, what);
    return checked(what, {
      certificateId: stringField(r, 'certificateId', what),
      certificatePem: stringField(r, 'certificatePem', what),
      privateKey: stringField(r, 'privateKey', what),
      ownershipToken: stringField(r, 'certificateOwnershipToken', what),
      fromCsr: false,
    });
  }
  const what = 'CreateCertificateFromCsr';
  const { key, csr } = await newKeyAndCsr(how.csrFor);
  const r = await request(
    opts,
    '$aws/certificates/create-from-csr/json',
    { certificateSigningRequest: csr },
    what,
  );
  return checked(what, {
    certificateId: stringField(r, 'certificateId', what),
    certificatePem: stringField(r, 'certificatePem', what),
    privateKey: key,
    ownershipToken: stringField(r, 'certificateOwnershipToken', what),
    fromCsr: true,
  });
}

/** The reply's certificate must parse and belong to the key, before anything is registered or written. */
function checked(what: string, made: NewIdentity): NewIdentity {
  let belongs = false;
  try {
    belongs = new X509Certificate(made.certificatePem).checkPrivateKey(createPrivateKey(made.privateKey));
  } catch {
    belongs = false;
  }
  if (!belongs) {
    throw new EdgegwError(
      'EDGEGW_E_PROVISION_REJECTED',
      `the reply to ${what} holds no certificate for its key (certificate ${made.certificateId})`,
    );
  }
  return made;
}

export interface Registration {
  thingName: string;
  deviceConfiguration: Record<string, string>;
}

export async function registerThing(
  opts: RequestOptions,
  template: string,
  ownershipToken: string,
  parameters: Record<string, string>,
): Promise<Registration> {
  const what = `RegisterThing with template ${template}`;
  const r = await request(
    opts,
    `$aws/provisioning-templates/${template}/provision/json`,
    { certificateOwnershipToken: ownershipToken, parameters },
    what,
  );
  const thingName = stringField(r, 'thingName', what);
  if (!new RegExp(ID_PATTERN).test(thingName)) {
    throw new EdgegwError(
      'EDGEGW_E_PROVISION_REJECTED',
      `${what} returned a thing name that is not a usable gateway id (1..128 of A-Za-z0-9_:-)`,
    );
  }
  const config = r.deviceConfiguration;
  const deviceConfiguration: Record<string, string> = {};
  if (typeof config === 'object' && config !== null) {
    for (const [k, v] of Object.entries(config as Record<string, unknown>)) {
      if (typeof v === 'string') deviceConfiguration[k] = v;
    }
  }
  return { thingName, deviceConfiguration };
}
