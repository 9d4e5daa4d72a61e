// The device certificate as the uplink holds it: its validity for `edgegw status` and the metrics,
// and the `certificate` audit entries (operations issue): at start when it is expired or not yet
// valid, once a day while fewer than WARN_DAYS are left, and when the broker handshake fails on a
// certificate. Names the problem and the subject, never the certificate or its key.

import type { Logger } from 'pino';
import { audit } from '../audit.js';
import type { Clock } from '../types.js';
import { certificateInfo, validityAt, type CertificateInfo } from './certificate.js';
import { isCertificateError } from './errors.js';

/** `edgegw status` and `edgegw doctor` warn under this many days left. */
export const WARN_DAYS = 30;
const DAY_MS = 86_400_000;

export class CertificateWatch {
  private timer: unknown = null;
  /**
   * The class (error code) of the last refusal audited; the same class is not audited again until a
   * connection succeeds. By class, not by text: an expired certificate's text shows the clock.
   */
  private refusal: string | null = null;
  private parsed: CertificateInfo | null | undefined = undefined;

  constructor(
    private pem: Buffer | string,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  /** A reload brought a new certificate: report that one from now on. */
  replace(pem: Buffer | string): void {
    if (Buffer.from(pem).equals(Buffer.from(this.pem))) return;
    this.pem = pem;
    this.parsed = undefined;
    this.refusal = null;
  }

  /** Validity now; null when the file does not parse as a certificate (TLS will say why). */
  info(): CertificateInfo | null {
    // Parsed once; days left and state follow the clock.
    if (this.parsed === undefined) {
      try {
        this.parsed = certificateInfo(this.pem, this.clock.now());
      } catch {
        this.parsed = null;
      }
    }
    if (this.parsed === null) return null;
    return { ...this.parsed, ...validityAt(this.parsed, this.clock.now()) };
  }

  start(): void {
    if (this.timer !== null) return;
    this.check();
  }

  stop(): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  /** A connection attempt failed with `err` (already classified as `reason`). */
  failed(err: Error, reason: string): void {
    // `reason` starts with its class's code (EDGEGW_E_UPLINK_TLS_CA, …_CLIENT_CERT, …).
    const code = reason.split(':')[0] ?? reason;
    if (!isCertificateError(err) || this.refusal === code) return;
    this.refusal = code;
    audit(
      this.log,
      'certificate',
      { problem: 'refused', code, reason },
      'TLS handshake failed on a certificate',
      'warn',
    );
  }

  connected(): void {
    this.refusal = null;
  }

  /** Audits a certificate that is unusable or expiring, then checks again in a day. */
  private check(): void {
    const info = this.info();
    if (info !== null && (info.state !== 'valid' || info.daysLeft < WARN_DAYS)) {
      const problem = info.state === 'valid' ? 'expiring' : info.state;
      audit(
        this.log,
        'certificate',
        {
          problem,
          daysLeft: info.daysLeft,
          notBefore: new Date(info.notBefore).toISOString(),
          notAfter: new Date(info.notAfter).toISOString(),
          subject: info.subject,
          // Not valid yet is far more often a gateway clock that is behind than a bad certificate.
          ...(problem === 'not-yet-valid' ? { probableCause: 'clock' } : {}),
        },
        message(info, this.clock.now()),
        'warn',
      );
    }
    this.timer = this.clock.setTimeout(() => this.check(), DAY_MS);
  }
}

function message(info: CertificateInfo, now: number): string {
  if (info.state === 'valid') return `device certificate expires in ${info.daysLeft} days`;
  if (info.state === 'expired') return 'device certificate is expired';
  return (
    `device certificate is not valid until ${new Date(info.notBefore).toISOString()} by this gateway's ` +
    `clock (${new Date(now).toISOString()}): probably a clock problem, not a broken certificate; set the clock (NTP, RTC)`
  );
}
