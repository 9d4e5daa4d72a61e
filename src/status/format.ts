// `edgegw status` for a technician at a terminal: a few header lines, then one row per sensor.
// `now` is injectable so the ages are testable.

import type { StatusSnapshot } from './model.js';

export function formatStatus(s: StatusSnapshot, now: number = Date.now()): string {
  const u = s.uplink;
  const q = s.queue;
  const c = s.counters;
  const lines: string[] = [];
  lines.push(
    `edgegw ${s.version} · gateway ${s.gateway} · up ${s.uptimeS < 60 ? `${s.uptimeS}s` : duration(s.uptimeS * 1000)}`,
  );
  const since = u.since > 0 ? ` for ${duration(now - u.since)}` : '';
  const uplinkError = u.lastError === null ? '' : ` · last error ${u.lastError}`;
  lines.push(`uplink   ${u.state}${since} · ${u.broker || '-'} · in flight ${u.inflight}${uplinkError}`);
  const oldest = q.oldestTs === null ? '' : ` · oldest ${duration(now - q.oldestTs)} old`;
  lines.push(
    `queue    ${q.records} records · ${q.readings} readings · ${bytes(q.bytes)}${oldest} · next seq ${q.nextSeq}`,
  );
  lines.push(
    `counters read ${c.readings} · committed ${c.committed} · delivered ${c.delivered} · ` +
      `dropped ${c.dropped} · quarantined ${c.quarantined} records · ${c.messages} messages`,
  );
  if (s.config)
    lines.push(
      `config   ${s.config.file} · hash ${s.config.hash} · loaded ${duration(now - s.config.loadedAt)} ago`,
    );
  if (c.dropped > 0)
    lines.push(`warning  ${c.dropped} readings dropped because the queue was full (EDGEGW_E_QUEUE_FULL)`);
  if (c.quarantined > 0)
    lines.push(`warning  ${c.quarantined} records quarantined as tampered (EDGEGW_E_QUEUE_TAMPERED)`);
  if (!s.clock.ok) lines.push(`warning  clock: ${s.clock.issue ?? 'implausible'} (EDGEGW_E_CLOCK)`);
  for (const o of s.overruns) {
    lines.push(
      `warning  ${o.scope} fell behind ${o.events} times, ${o.skipped} polls skipped (EDGEGW_E_SENSOR_OVERRUN)`,
    );
  }
  lines.push('');
  lines.push(
    ...table(
      ['SENSOR', 'VALUE', 'QUALITY', 'AGE', 'ERRORS', 'LAST ERROR'],
      s.sensors.map((x) => [
        x.id,
        x.value === null ? '-' : String(x.value),
        x.quality ?? '-',
        x.ts === null ? 'never read' : duration(now - x.ts),
        String(x.errors),
        x.lastError ?? '',
      ]),
      [false, true, false, true, true, false],
    ),
  );
  return `${lines.join('\n')}\n`;
}

/** Left- or right-aligned columns separated by two spaces; trailing blanks trimmed. */
function table(head: string[], rows: string[][], right: boolean[]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => {
        const w = widths[i] ?? 0;
        return right[i] === true ? cell.padStart(w) : cell.padEnd(w);
      })
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)];
}

/** 0.4s, 12s, 3m05s, 2h07m, 3d04h: precise when short, coarse when long. */
export function duration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '0s';
  if (ms < 10_000) return `${(Math.floor(ms / 100) / 10).toFixed(1)}s`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${pad(s % 60)}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${pad(m % 60)}m`;
  return `${Math.floor(h / 24)}d${pad(h % 24)}h`;
}

/** Bytes in binary units, as the configuration writes them (KiB, MiB). */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}
