// The STATUS= line `systemctl status edgegw` shows: the technician's first questions (is it
// connected, is anything waiting and since when, was anything dropped) in one short line, e.g.
// `connected; backlog 0 readings; dropped 0` or
// `backoff (EDGEGW_E_UPLINK_CONNECT); backlog 5400 readings, oldest 9m; dropped 0`.

import type { StatusSnapshot } from './model.js';

export function statusLine(s: StatusSnapshot, nowMs: number): string {
  const { uplink, queue, counters } = s;
  const code = uplink.lastError?.split(':')[0];
  const state =
    uplink.state === 'connected' || code === undefined ? uplink.state : `${uplink.state} (${code})`;
  const age =
    queue.oldestTs === null || queue.readings === 0 ? '' : `, oldest ${shortAge(nowMs - queue.oldestTs)}`;
  const clock = s.clock.ok ? '' : '; clock implausible';
  return `${state}; backlog ${queue.readings} readings${age}; dropped ${counters.dropped}${clock}`;
}

/** 0s, 59s, 4m, 3h, 2d: a glance, not a measurement. */
export function shortAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172_800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}
