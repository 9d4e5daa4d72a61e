// The consumer's NDJSON lines: a row is `{gw, seq, sensor, ts, value, quality}`; a notice line (with
// --notices) is `{gw, seq, t0, gap: {from, to, why, readings}}`, the wire's own notice shape.

import type { Notice, Row } from './decode.js';

export function rowLine(r: Row): string {
  return `${JSON.stringify({ gw: r.gw, seq: r.seq, sensor: r.sensor, ts: r.ts, value: r.value, quality: r.quality })}\n`;
}

export function noticeLine(n: Notice): string {
  const gap = { from: n.from, to: n.to, why: n.why, readings: n.readings };
  return `${JSON.stringify({ gw: n.gw, seq: n.seq, t0: n.t0, gap })}\n`;
}
