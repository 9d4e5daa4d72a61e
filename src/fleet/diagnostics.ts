// The diagnostics job's report (issue 11) as statusDetails: redacted, bounded, split. Every string
// is redacted (URL userinfo, PEM blocks, runs that look like key bytes: a queue key is 32 bytes, 64
// hex digits or 44 base64 characters; key ids and paths stay) and cut to TEXT_MAX; the whole report
// is held to REPORT_MAX characters, well inside what one update may carry (AWS: 1,024 characters a
// value, 128 KB a payload), by dropping the last items of its longest lists, which the report then
// names under `truncated`. It is split into values of at most 1,024 characters, in order.

import { maskUserinfo } from '../config/redact.js';
import type { CheckLine } from '../doctor/check.js';
import { DETAIL_MAX } from './operations.js';

/** Characters of report JSON at most: 12 values of 1,024 (about 12 KB of the 128 KB payload). */
export const REPORT_MAX = 12 * 1024;
/** Characters of one string in the report at most. */
export const TEXT_MAX = 400;

const PEM = /-----BEGIN [A-Z0-9 ]{0,40}-----[\s\S]*?(-----END [A-Z0-9 ]{0,40}-----|$)/g;
const HEX_KEY = /\b[0-9A-Fa-f]{64,}\b/g;
// Base64 of 32 bytes or more, mixing digits, upper and lower case (a path or a word seldom does).
const BASE64_KEY = /[A-Za-z0-9+/_-]{43,}={0,2}/g;
const REDACTED = '[redacted]';

/** The doctor's lines for the report: FAIL and WARN first, with what was found and the fix. */
export function doctorLines(lines: readonly CheckLine[]): string[] {
  const rank = { FAIL: 0, WARN: 1, PASS: 2 } as const;
  return [...lines]
    .sort((a, b) => rank[a.result] - rank[b.result])
    .map((l) =>
      l.result === 'PASS'
        ? `PASS ${l.check}`
        : `${l.result} ${l.check}: ${l.found}${l.fix === '' ? '' : ` (fix: ${l.fix})`}`,
    );
}

/** A string with anything that could be a secret taken out. */
export function redact(text: string): string {
  return maskUserinfo(text)
    .replace(PEM, REDACTED)
    .replace(HEX_KEY, REDACTED)
    .replace(BASE64_KEY, (m) => (/[0-9]/.test(m) && /[a-z]/.test(m) && /[A-Z]/.test(m) ? REDACTED : m));
}

/** The report as statusDetails: `parts`, `report0`…, and `truncated` ("no" or what was left out). */
export function diagnosticsDetails(report: Record<string, unknown>): Record<string, string> {
  const r = clean(report) as Record<string, unknown>;
  const totals = new Map<string, number>();
  for (const [k, v] of Object.entries(r)) if (Array.isArray(v)) totals.set(k, v.length);
  let text = JSON.stringify(r);
  while (text.length > REPORT_MAX) {
    const longest = [...totals.keys()]
      .filter((k) => (r[k] as unknown[]).length > 0)
      .sort((a, b) => JSON.stringify(r[b]).length - JSON.stringify(r[a]).length)[0];
    if (longest === undefined) {
      // No list left to shorten: the text itself is cut (it no longer parses, and says so).
      text = `${text.slice(0, REPORT_MAX - 40)} [truncated: over ${REPORT_MAX} characters]`;
      break;
    }
    const list = r[longest] as unknown[];
    // A tenth at a time (at least one item): a few rounds even for thousands of sensors.
    list.length = Math.min(list.length - 1, Math.floor(list.length * 0.9));
    r.truncated = truncation(r, totals);
    text = JSON.stringify(r);
  }
  const out: Record<string, string> = {
    parts: '',
    truncated: typeof r.truncated === 'string' ? r.truncated : 'no',
  };
  let i = 0;
  for (let at = 0; at < text.length; at += DETAIL_MAX) out[`report${i++}`] = text.slice(at, at + DETAIL_MAX);
  out.parts = String(i);
  return out;
}

function truncation(r: Record<string, unknown>, totals: ReadonlyMap<string, number>): string {
  const cut = [...totals]
    .filter(([k, n]) => (r[k] as unknown[]).length < n)
    .map(([k, n]) => `${k}: ${(r[k] as unknown[]).length} of ${n} shown`);
  return `over ${REPORT_MAX} characters; ${cut.join('; ')}`;
}

function clean(v: unknown): unknown {
  if (typeof v === 'string') {
    const s = redact(v);
    return s.length > TEXT_MAX ? `${s.slice(0, TEXT_MAX - 1)}…` : s;
  }
  if (Array.isArray(v)) return v.map(clean);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, clean(x)]));
  }
  return v;
}
