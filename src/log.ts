// pino JSON to stdout (journald keeps one line per record). Reading values, payloads and key
// material must never be logged (DESIGN.md §2.6): callers log ids and counts only, and these
// redaction paths catch the field names a careless call would use.

import { pino, type Logger, type DestinationStream } from 'pino';

export const REDACT_PATHS = [
  'value',
  'values',
  'payload',
  'key',
  'secret',
  'raw',
  'readings',
  '*.value',
  '*.values',
  '*.payload',
  '*.key',
  '*.secret',
  '*.raw',
  '*.readings',
];

export interface LogOptions {
  level: string;
  gateway?: string;
  destination?: DestinationStream;
}

export function createLogger(opts: LogOptions): Logger {
  return pino(
    {
      level: opts.level,
      base: opts.gateway === undefined ? {} : { gw: opts.gateway },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    opts.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
