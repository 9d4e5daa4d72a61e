// The audit trail (operations issue): administrative actions as distinct log entries a site can
// ship to its central logging. Each entry carries `"audit": "<event>"` and is written whatever
// `log.level` says (a level of `error` must not hide who reloaded what). Fields are ids, key paths,
// counts and codes: never a secret, a reading value or a payload (DESIGN.md §2.6); the logger's
// redaction still applies.

import type { Logger } from 'pino';

export const AuditEvents = {
  start: 'The daemon started (version, sensors, config hash).',
  stop: 'The daemon stopped, and why (signal, fatal error).',
  reload: 'A reload was applied (the key paths that changed).',
  'reload-refused': 'A reload was refused (why; the running config goes on).',
  keygen: 'A queue key file was generated (its path).',
  'queue-verify': 'The queue was verified offline (records, tampered count).',
  'queue-repair': 'The queue was repaired offline (kept, quarantined, backup folder).',
  quarantine: 'A record failed authentication and was quarantined (seq).',
  'queue-full': 'Readings were dropped by the full policy or a failed write (counts, rate-limited).',
  'clock-correction':
    'The wall clock was found good; readings stamped before it are corrected (how, offset, seq ranges).',
  provision: 'A device identity was provisioned by claim (certificate id, thing name, template, files).',
  'certificate-rotation': 'A certificate rotation ended: rotated (new certificate id) or rolled back (why).',
  'shadow-change':
    'A remote change from the shadow was applied (shadow, its version, the key paths, the desired paths refused).',
  'shadow-refused':
    'A remote change from the shadow, or some of its keys, was refused (version, key paths, refused paths, error count and keys, restart-only keys).',
  'shadow-reverted':
    'A remote uplink change lost the broker and was reverted (version, key paths, refused paths).',
  job: 'An IoT job ended (job id, operation, SUCCEEDED / FAILED / REJECTED, the reason).',
  certificate: 'A certificate problem: expiring, expired, not yet valid, refused by the broker.',
} as const;

export type AuditEvent = keyof typeof AuditEvents;

/** Plain facts only: no nested objects, so nothing unexpected rides along. */
export type AuditFields = Record<string, string | number | boolean | null | readonly string[]>;

/** The logger audit entries go to: the same destination, never filtered below info. */
export function auditLogger(log: Logger): Logger {
  return log.child({}, { level: 'info' });
}

/** `level: 'warn'` for an entry that is also a warning to the technician (a quarantine, a drop). */
export function audit(
  log: Logger,
  event: AuditEvent,
  fields: AuditFields,
  msg: string,
  level: 'info' | 'warn' = 'info',
): void {
  auditLogger(log)[level]({ ...fields, audit: event }, msg);
}
