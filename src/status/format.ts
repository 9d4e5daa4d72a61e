// `edgegw status` for a technician at a terminal: a few header lines, then one row per sensor.
// `now` is injectable so the ages are testable. Fields a daemon of an older version does not send
// are left out, not shown as zero.

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
  const reconnects = (u.reconnects ?? 0) > 0 ? ` · ${u.reconnects} reconnects` : '';
  lines.push(
    `uplink   ${u.state}${since} · ${u.broker || '-'} · in flight ${u.inflight}${reconnects}${uplinkError}`,
  );
  const age = q.ageS ?? (q.oldestTs === null ? null : (now - q.oldestTs) / 1000);
  const oldest = age === null ? '' : ` · oldest ${duration(age * 1000)} old`;
  lines.push(
    `queue    ${q.records} records · ${q.readings} readings · ${bytes(q.bytes)}${oldest} · next seq ${q.nextSeq}`,
  );
  if (q.keys !== undefined && q.keys.sealing !== null) {
    const older = q.keys.older === 1 ? '1 older key' : `${q.keys.older} older keys`;
    lines.push(`keys     sealing with key id ${q.keys.sealing} · ${older} still with queued records`);
  }
  lines.push(
    `counters read ${c.readings} · committed ${c.committed} (written ${c.written}) · delivered ${c.delivered} · ` +
      `dropped ${c.dropped} · quarantined ${c.quarantined} records · ${c.messages} messages`,
  );
  const rates = uplinkRates(s);
  if (rates !== null) lines.push(`rates    ${rates}`);
  const pace = paceLine(s);
  if (pace !== null) lines.push(`pace     ${pace}`);
  const drain = drainLine(s);
  if (drain !== null) lines.push(`drain    ${drain}`);
  const cert = s.certificate ?? null;
  if (cert !== null) {
    lines.push(
      `cert     device certificate ${cert.state}, ${cert.daysLeft} days left (until ${day(cert.notAfter)})`,
    );
  }
  if (s.config)
    lines.push(
      `config   ${s.config.file} · hash ${s.config.hash} · loaded ${duration(now - s.config.loadedAt)} ago`,
    );
  lines.push(...fleetLines(s));
  if (c.dropped > 0)
    lines.push(`warning  ${c.dropped} readings dropped because the queue was full (EDGEGW_E_QUEUE_FULL)`);
  if (c.quarantined > 0)
    lines.push(`warning  ${c.quarantined} records quarantined as tampered (EDGEGW_E_QUEUE_TAMPERED)`);
  if (cert?.warning === true) lines.push(`warning  ${certificateWarning(cert)}`);
  if (!s.clock.ok) lines.push(`warning  clock: ${s.clock.issue ?? 'implausible'} (EDGEGW_E_CLOCK)`);
  const k = s.clock;
  if (k.offsetMs !== null || k.pendingRanges > 0) {
    const fix = k.offsetMs === null ? '' : ` · early readings corrected by ${k.offsetMs} ms (${k.via ?? ''})`;
    const held = k.holding ? ' · held for the sync' : '';
    lines.push(`clock    source ${k.source}${fix} · ${k.pendingRanges} ranges uncorrected${held}`);
  }
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
        x.ts === null ? 'never read' : duration(x.ageS == null ? now - x.ts : x.ageS * 1000),
        String(x.errors),
        x.lastError ?? '',
      ]),
      [false, true, false, true, true, false],
    ),
  );
  return `${lines.join('\n')}\n`;
}

/** `12.3 of 100 publishes/s · 45 KiB/s of 512 KiB/s (last 10 s)`; null when the uplink does not say. */
function uplinkRates(s: StatusSnapshot): string | null {
  const r = s.uplink.rates ?? null;
  if (r === null) return null;
  const pubLimit = r.limits === null ? '' : ` of ${r.limits.publishesPerSecond}`;
  const byteLimit = r.limits === null ? '' : ` of ${bytes(r.limits.bytesPerSecond)}/s`;
  return (
    `${r.publishesPerSecond}${pubLimit} publishes/s · ${bytes(r.bytesPerSecond)}/s${byteLimit} ` +
    `(last ${r.windowS} s)`
  );
}

/** Shown only while the adaptive pace is below the limits: how far, and why. */
function paceLine(s: StatusSnapshot): string | null {
  const p = s.uplink.pace;
  if (p === undefined || p.factor >= 1) return null;
  const refused = p.refused > 0 ? ` · ${p.refused} publishes refused and resent` : '';
  return (
    `${Math.round(p.factor * 100)}% of the limits (${p.publishesPerSecond} publishes/s, ` +
    `${bytes(p.bytesPerSecond)}/s) · ${p.reason ?? 'recovering'}${refused}`
  );
}

/** In and out rates of the backlog and when it will be empty; null with nothing queued. */
function drainLine(s: StatusSnapshot): string | null {
  const q = s.queue;
  const r = q.rates ?? null;
  if (r === null || q.readings === 0) return null;
  const when = q.drainS === null ? 'not draining' : `empty in about ${duration(q.drainS * 1000)}`;
  return `in ${r.committedPerSecond} · out ${r.deliveredPerSecond} readings/s · ${when}`;
}

type CertificateLine = NonNullable<StatusSnapshot['certificate']>;

function certificateWarning(c: CertificateLine): string {
  if (c.state === 'expired') return `device certificate expired on ${day(c.notAfter)}: the broker refuses it`;
  if (c.state === 'not-yet-valid')
    return `device certificate is valid only from ${day(c.notBefore)}: is the clock right?`;
  return `device certificate expires in ${c.daysLeft} days (${day(c.notAfter)}): renew it`;
}

function day(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/**
 * One frame of `edgegw status --watch`. On a terminal it moves the cursor back over the previous
 * frame and clears below, so the block refreshes in place (lines are cut to the terminal's width:
 * a wrapped line would throw the count off); elsewhere (a pipe, a log) frames are plain blocks.
 */
export function watchFrame(
  text: string,
  previousLines: number,
  tty: { isTTY: boolean; columns?: number },
): string {
  if (!tty.isTTY) return previousLines > 0 ? `\n${text}` : text;
  const width = tty.columns ?? 0;
  const body =
    width > 0
      ? text
          .split('\n')
          .map((l) => (l.length > width ? l.slice(0, width) : l))
          .join('\n')
      : text;
  return previousLines > 0 ? `\x1b[${previousLines}A\r\x1b[J${body}` : body;
}

/** Lines a frame occupies (the cursor ends at the start of the line after it). */
export function frameLines(text: string): number {
  return text.split('\n').length - 1;
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

/** The fleet section: the shadow's version, its last change, the overlay keys and their source. */
function fleetLines(s: StatusSnapshot): string[] {
  const j = s.fleet?.jobs ?? null;
  const jobs =
    j === null
      ? []
      : [
          `jobs     ${j.current === null ? 'idle' : `running ${j.current.jobId} (${j.current.operation})`}` +
            (j.last === null ? '' : ` · last ${j.last.jobId} ${j.last.operation} ${j.last.status}`),
        ];
  const d = s.fleet?.defender ?? null;
  const defender =
    d === null
      ? []
      : [
          `defender ${d.accepted} reports accepted · ${d.rejected} rejected` +
            (d.lastRejection === null ? '' : ` (last: ${d.lastRejection.code}: ${d.lastRejection.message})`),
        ];
  return [...shadowLines(s), ...jobs, ...defender];
}

function shadowLines(s: StatusSnapshot): string[] {
  const sh = s.fleet?.shadow ?? null;
  if (sh === null) return [];
  const c = sh.lastChange;
  const change = c === null ? 'no remote change yet' : `last change v${c.shadowVersion} ${c.result}`;
  const lines = [
    `shadow   ${sh.name} · version ${sh.version ?? '-'} · ${change}${sh.proving ? ' (proving)' : ''}`,
  ];
  if (c?.reason !== undefined) lines.push(`shadow   ${c.reason}`);
  for (const o of sh.overlay) lines.push(`overlay  ${o.path} from shadow ${sh.name} v${o.shadowVersion}`);
  if (sh.localOnly.length > 0) lines.push(`local    ${sh.localOnly.join(', ')} (site file only)`);
  if (sh.lastError !== null) lines.push(`warning  shadow: ${sh.lastError} (EDGEGW_E_FLEET_SHADOW)`);
  if (sh.overlayRefused !== null && sh.overlayRefused !== undefined)
    lines.push(`warning  stored overlay refused: ${sh.overlayRefused} (EDGEGW_E_FLEET_OVERLAY)`);
  return lines;
}
