// A throwaway PKI for the demo and the tests: a fresh CA per call, a server certificate for
// localhost (DNS and IP SANs) or for chosen names, and a client certificate whose CN is the gateway
// id; the tests choose validities to make expired and not yet valid certificates. Keys come from
// Node's native RSA key generation (node-forge delegates to crypto.generateKeyPairSync).

import { randomBytes } from 'node:crypto';
import { chmod, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import forge from 'node-forge';

export interface DemoPki {
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** The CA's private key (PEM): the IoT Core simulator signs CSRs and claim certificates with it. */
  caKey?: string;
}

interface Issuer {
  cert: forge.pki.Certificate;
  key: forge.pki.rsa.PrivateKey;
}

const DAY_MS = 86_400_000;

function newKeys(): forge.pki.rsa.KeyPair {
  return forge.pki.rsa.generateKeyPair({ bits: 2048 });
}

/**
 * When a certificate is valid, in days from now (negative: in the past). The default, a day ago
 * to a year ahead, is a good certificate; tests of expired or not-yet-valid ones move it.
 */
export interface Validity {
  fromDays: number;
  toDays: number;
}

const DEFAULT_VALIDITY: Validity = { fromDays: -1, toDays: 365 };

function baseCert(
  publicKey: forge.pki.PublicKey,
  cn: string,
  validity: Validity = DEFAULT_VALIDITY,
): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  // A positive serial: clear the top bit so DER does not read it as negative.
  const serial = randomBytes(16);
  serial[0] = serial[0]! & 0x7f;
  cert.serialNumber = serial.toString('hex');
  cert.validity.notBefore = new Date(Date.now() + validity.fromDays * DAY_MS);
  cert.validity.notAfter = new Date(Date.now() + validity.toDays * DAY_MS);
  cert.setSubject([
    { name: 'commonName', value: cn },
    { name: 'organizationName', value: 'edgegw demo' },
  ]);
  return cert;
}

function createCa(cn: string): Issuer {
  const keys = newKeys();
  const cert = baseCert(keys.publicKey, cn);
  cert.setIssuer(cert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { cert, key: keys.privateKey };
}

function issue(
  ca: Issuer,
  cn: string,
  extensions: object[],
  validity?: Validity,
): { cert: string; key: string } {
  const keys = newKeys();
  const cert = baseCert(keys.publicKey, cn, validity);
  cert.setIssuer(ca.cert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'authorityKeyIdentifier', keyIdentifier: ca.cert.generateSubjectKeyIdentifier().getBytes() },
    ...extensions,
  ]);
  cert.sign(ca.key, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: forge.pki.privateKeyToPem(keys.privateKey) };
}

export interface DemoPkiOptions {
  /** Validity of the client (device) certificate; the CA keeps the default. */
  clientValidity?: Validity;
  /** Validity of the server certificate (an expired or not yet valid broker in negative tests). */
  serverValidity?: Validity;
  /** Host names and IP addresses the server certificate is for; default localhost, 127.0.0.1, ::1. */
  serverNames?: readonly string[];
}

const LOCAL_NAMES = ['localhost', '127.0.0.1', '::1'];

/** subjectAltName entries: type 7 (IP) for addresses, type 2 (DNS) for names. */
function altNames(names: readonly string[]): object[] {
  return names.map((n) => (isIP(n) === 0 ? { type: 2, value: n } : { type: 7, ip: n }));
}

/**
 * A new CA with a localhost server certificate and a client certificate for `clientId`. Every call
 * makes an unrelated CA, so a second call gives the "wrong CA" of negative tests.
 */
export function createDemoPki(clientId = 'demo-gw1', opts: DemoPkiOptions = {}): DemoPki {
  const ca = createCa(`edgegw demo CA ${randomBytes(4).toString('hex')}`);
  const names = opts.serverNames ?? LOCAL_NAMES;
  const server = issue(
    ca,
    names[0] ?? 'localhost',
    [
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: altNames(names) },
    ],
    opts.serverValidity,
  );
  const client = issue(ca, clientId, [{ name: 'extKeyUsage', clientAuth: true }], opts.clientValidity);
  return {
    caCert: forge.pki.certificateToPem(ca.cert),
    serverCert: server.cert,
    serverKey: server.key,
    clientCert: client.cert,
    clientKey: client.key,
    caKey: forge.pki.privateKeyToPem(ca.key),
  };
}

function issuerOf(pki: DemoPki): Issuer {
  if (pki.caKey === undefined) throw new Error('this PKI was loaded without its CA key');
  return {
    cert: forge.pki.certificateFromPem(pki.caCert),
    key: forge.pki.privateKeyFromPem(pki.caKey),
  };
}

/** Another client certificate from the same CA (a fleet-provisioning claim certificate, say). */
export function issueClientCertificate(
  pki: DemoPki,
  cn: string,
  validity?: Validity,
): { cert: string; key: string } {
  return issue(issuerOf(pki), cn, [{ name: 'extKeyUsage', clientAuth: true }], validity);
}

/** Signs a PEM CSR as a client certificate of `pki`'s CA, keeping the CSR's subject and key. */
export function signCertificateRequest(pki: DemoPki, csrPem: string, validity?: Validity): string {
  const ca = issuerOf(pki);
  const csr = forge.pki.certificationRequestFromPem(csrPem);
  if (!csr.verify() || csr.publicKey === null) throw new Error('the CSR signature does not verify');
  const cn = csr.subject.getField('CN') as { value?: string } | null;
  const cert = baseCert(csr.publicKey, String(cn?.value ?? 'device'), validity);
  cert.setIssuer(ca.cert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'authorityKeyIdentifier', keyIdentifier: ca.cert.generateSubjectKeyIdentifier().getBytes() },
    { name: 'extKeyUsage', clientAuth: true },
  ]);
  cert.sign(ca.key, forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}

/** ca.pem, server.pem, server.key, client.pem, client.key in `dir`; private keys mode 0600. */
export async function writeDemoPki(dir: string, pki: DemoPki): Promise<void> {
  await writeFile(join(dir, 'ca.pem'), pki.caCert, { mode: 0o644 });
  await writeFile(join(dir, 'server.pem'), pki.serverCert, { mode: 0o644 });
  await writeFile(join(dir, 'client.pem'), pki.clientCert, { mode: 0o644 });
  for (const [name, pem] of [
    ['server.key', pki.serverKey],
    ['client.key', pki.clientKey],
  ] as const) {
    const file = join(dir, name);
    await writeFile(file, pem, { mode: 0o600 });
    // writeFile's mode applies only to new files (and passes through the umask): make it exact.
    await chmod(file, 0o600);
  }
}
