// What a technician needs to know about the device certificate, without the certificate itself:
// validity window and days left. Shared by `edgegw status`, `edgegw doctor` and the metrics.

import { X509Certificate } from 'node:crypto';

export type CertificateState = 'valid' | 'expired' | 'not-yet-valid';

export interface CertificateInfo {
  subject: string;
  issuer: string;
  /** ms since the epoch */
  notBefore: number;
  /** ms since the epoch */
  notAfter: number;
  /** Whole days until notAfter (negative once expired). */
  daysLeft: number;
  state: CertificateState;
}

const DAY_MS = 86_400_000;

/** Parses a PEM certificate; throws on anything that is not one (callers say which file). */
export function certificateInfo(pem: Buffer | string, now: number): CertificateInfo {
  const cert = new X509Certificate(pem);
  const notBefore = Date.parse(cert.validFrom);
  const notAfter = Date.parse(cert.validTo);
  return {
    subject: cert.subject.replaceAll('\n', ', '),
    issuer: cert.issuer.replaceAll('\n', ', '),
    notBefore,
    notAfter,
    ...validityAt({ notBefore, notAfter }, now),
  };
}

/** Days left and state of a validity window at `now` (a parsed certificate, re-read as time passes). */
export function validityAt(
  w: { notBefore: number; notAfter: number },
  now: number,
): { daysLeft: number; state: CertificateState } {
  return {
    daysLeft: Math.floor((w.notAfter - now) / DAY_MS),
    state: now < w.notBefore ? 'not-yet-valid' : now > w.notAfter ? 'expired' : 'valid',
  };
}
