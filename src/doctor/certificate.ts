// The device certificate and the CA bundle, read from the files the config names. Lines name the
// file and dates; never the key, never the certificate's bytes.

import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { SiteConfig } from '../config/schema.js';
import { certificateInfo, type CertificateInfo } from '../uplink/certificate.js';
import { errCode, fail, isoDay, pass, syscallCode, warn, type CheckLine } from './check.js';

/** Days left under which doctor warns, and under which it fails. */
export const WARN_DAYS = 30;
export const FAIL_DAYS = 7;

const RENEW = 'issue a new device certificate (edgegw rotate-certificate), then point uplink.cert at it';

export async function checkDeviceCertificate(site: SiteConfig, now: number): Promise<CheckLine[]> {
  const file = site.uplink.cert;
  let pem: Buffer;
  let info: CertificateInfo;
  try {
    pem = await readFile(file);
    info = certificateInfo(pem, now);
  } catch (err) {
    const why = syscallCode(err, 'not a PEM certificate');
    return [
      fail('certificate', `uplink.cert ${file}: ${why}`, 'point uplink.cert at the device certificate (PEM)'),
    ];
  }
  const lines = [pass('certificate', `${file}: ${info.subject}, issued by ${info.issuer}`)];
  lines.push(await keyMatch(pem, site.uplink.key, file));
  lines.push(...validity(info, now));
  return lines;
}

async function keyMatch(pem: Buffer, keyFile: string, certFile: string): Promise<CheckLine> {
  let matches: boolean;
  try {
    matches = new X509Certificate(pem).checkPrivateKey(createPrivateKey(await readFile(keyFile)));
  } catch (err) {
    // The parser's message could quote the key file: only its code is shown.
    const why = syscallCode(err, 'not a PEM private key');
    return fail(
      'certificate key',
      `uplink.key ${keyFile}: ${why}`,
      'point uplink.key at the device private key (PEM)',
    );
  }
  if (!matches)
    return fail(
      'certificate key',
      `uplink.key ${keyFile} does not belong to ${certFile}`,
      'use the private key that was issued with that certificate',
    );
  return pass('certificate key', `uplink.key ${keyFile} belongs to the certificate`);
}

function validity(info: CertificateInfo, now: number): CheckLine[] {
  switch (info.state) {
    case 'expired':
      return [fail('certificate validity', `expired on ${isoDay(info.notAfter)}`, RENEW)];
    case 'not-yet-valid':
      return [
        fail(
          'certificate validity',
          `not valid before ${new Date(info.notBefore).toISOString()}, and the clock reads ` +
            `${new Date(now).toISOString()}: probably the gateway's clock`,
          'set the clock: timedatectl set-ntp true (or date -s), then check the clock line',
        ),
      ];
    case 'valid':
      break;
  }
  const found = `${info.daysLeft} days left (until ${isoDay(info.notAfter)})`;
  const lines = [pass('certificate validity', `valid since ${isoDay(info.notBefore)}`)];
  if (info.daysLeft < FAIL_DAYS) lines.push(fail('certificate days left', found, RENEW));
  else if (info.daysLeft < WARN_DAYS) lines.push(warn('certificate days left', found, RENEW));
  else lines.push(pass('certificate days left', found));
  return lines;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export async function checkCa(site: SiteConfig, now: number): Promise<CheckLine> {
  const file = site.uplink.ca;
  const fix = 'point uplink.ca at the CA bundle that signs the broker (AmazonRootCA1.pem for IoT Core)';
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    return fail('ca', `uplink.ca ${file} cannot be read (${errCode(err)})`, fix);
  }
  const blocks = text.match(PEM_CERT) ?? [];
  if (blocks.length === 0) return fail('ca', `uplink.ca ${file} holds no PEM certificate`, fix);
  const infos: CertificateInfo[] = [];
  for (const [i, pem] of blocks.entries()) {
    try {
      infos.push(certificateInfo(pem, now));
    } catch {
      return fail('ca', `uplink.ca ${file}: certificate ${i + 1} of ${blocks.length} does not parse`, fix);
    }
  }
  const expired = infos.filter((c) => c.state === 'expired');
  const names = infos.map((c) => c.subject).join('; ');
  if (expired.length === infos.length)
    return fail('ca', `uplink.ca ${file}: every certificate has expired (${names})`, fix);
  if (expired.length > 0)
    return warn('ca', `uplink.ca ${file}: ${expired.length} of ${infos.length} certificates expired`, fix);
  return pass('ca', `${file}: ${infos.length} certificate${infos.length === 1 ? '' : 's'} (${names})`);
}
