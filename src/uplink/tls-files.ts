// The uplink's TLS material, checked before any connection: a technician who copied the wrong file
// gets told which key of the configuration points at it, never the file's contents.

import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { EdgegwError, Exit } from '../errors.js';

export interface TlsMaterial {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

export async function loadTlsFiles(paths: { ca: string; cert: string; key: string }): Promise<TlsMaterial> {
  const ca = await readKeyMaterial(paths.ca, 'uplink.ca');
  const cert = await readKeyMaterial(paths.cert, 'uplink.cert');
  const key = await readKeyMaterial(paths.key, 'uplink.key');

  const caCerts =
    ca.toString('utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (caCerts.length === 0)
    unusable('uplink.ca', paths.ca, 'holds no PEM certificate (-----BEGIN CERTIFICATE-----)');
  for (const pem of caCerts) parse(() => new X509Certificate(pem), 'uplink.ca', paths.ca, 'a CA certificate');
  const device = parse(() => new X509Certificate(cert), 'uplink.cert', paths.cert, 'a PEM certificate');
  const privateKey = parse(() => createPrivateKey(key), 'uplink.key', paths.key, 'a PEM private key');
  if (!device.checkPrivateKey(privateKey)) {
    throw new EdgegwError(
      'EDGEGW_E_KEY_READ',
      `uplink.key ${paths.key} does not belong to the certificate uplink.cert ${paths.cert}; ` +
        'use the private key that was issued with that certificate',
      Exit.CONFIG,
    );
  }
  return { ca, cert, key };
}

/** A certificate or key file's bytes; a read failure names the file and what it is for, never its contents. */
export async function readKeyMaterial(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new EdgegwError('EDGEGW_E_KEY_READ', `${what} ${file} cannot be read (${code})`, Exit.CONFIG);
  }
}

function parse<T>(fn: () => T, what: string, file: string, expected: string): T {
  try {
    return fn();
  } catch {
    // The parser's message is generic ("no start line") and could quote input: not shown.
    return unusable(what, file, `is not ${expected}`);
  }
}

function unusable(what: string, file: string, why: string): never {
  throw new EdgegwError('EDGEGW_E_KEY_READ', `${what} ${file} ${why}`, Exit.CONFIG);
}
