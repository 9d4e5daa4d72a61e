// Captured payloads as `edgegw decode` reads them (docs/wire-format.md, "Captured payloads"):
//  - one raw payload: a zlib stream (first byte 0x78), or one JSON message (pretty-printed is fine);
//  - or text lines, one payload each: a JSON message, `{"data":"<base64>"}` (what an IoT Rule with
//    `SELECT encode(*, 'base64') AS data` delivers), or bare base64 of the payload bytes.
// Blank lines and lines starting with `#` are skipped.

import { DecodeError } from './errors.js';
import { isZlibHeader } from './decode.js';

/** One payload of the input, or why its line is not one (the other lines still count). */
export type CapturedPayload =
  | { /** 1-based line of the input (1 for a raw payload). */ line: number; payload: Uint8Array }
  | { line: number; error: DecodeError };

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

export function splitCaptured(input: Uint8Array): CapturedPayload[] {
  if (input.length === 0) return [];
  if (isZlibHeader(input)) return [{ line: 1, payload: input }];
  const text = Buffer.from(input).toString('utf8');
  const whole = parseObject(text.trim());
  if (whole !== null && typeof whole['data'] !== 'string') return [{ line: 1, payload: input }];
  const out: CapturedPayload[] = [];
  for (const [k, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    try {
      out.push({ line: k + 1, payload: linePayload(line) });
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      out.push({ line: k + 1, error: err });
    }
  }
  return out;
}

/** An IoT Rule event or Kinesis data in one of the wrappers: `{"data":"<base64>"}` or the message itself. */
export function unwrapData(doc: Record<string, unknown>): Uint8Array | null {
  const data = doc['data'];
  if (typeof data !== 'string' || doc['v'] !== undefined) return null;
  return fromBase64(data, 'data');
}

function linePayload(line: string): Uint8Array {
  if (line.startsWith('{')) {
    const doc = parseObject(line);
    if (doc === null) throw new DecodeError('json', 'not valid JSON');
    return unwrapData(doc) ?? Buffer.from(line, 'utf8');
  }
  return fromBase64(line, 'line');
}

export function fromBase64(s: string, at: string): Uint8Array {
  if (!BASE64.test(s) || s.length % 4 === 1) throw new DecodeError('framing', `${at} is not base64`);
  return Buffer.from(s, 'base64');
}

function parseObject(text: string): Record<string, unknown> | null {
  if (!text.startsWith('{')) return null;
  try {
    const doc: unknown = JSON.parse(text);
    return typeof doc === 'object' && doc !== null && !Array.isArray(doc)
      ? (doc as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}
