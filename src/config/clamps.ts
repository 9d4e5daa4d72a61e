// Values the broker would refuse or override, brought into its range with a warning instead of an
// error: the site still starts, and check-config, run and reload say what was changed. Today only
// the MQTT keep-alive, which AWS IoT Core accepts from 30 s to 1200 s (DESIGN.md §8).

import type { IssueList } from './issues.js';
import type { SiteConfig } from './schema.js';
import { formatDuration } from './units.js';

/** AWS IoT Core's keep-alive range, in ms. */
export const KEEPALIVE_MIN_MS = 30_000;
export const KEEPALIVE_MAX_MS = 1_200_000;

/** Clamps uplink.keepalive of a decoded (not yet frozen) config into IoT Core's range, warning when it moved. */
export function clampToBroker(config: SiteConfig, issues: IssueList): void {
  const asked = config.uplink.keepalive;
  const kept = Math.min(KEEPALIVE_MAX_MS, Math.max(KEEPALIVE_MIN_MS, asked));
  if (kept === asked) return;
  config.uplink.keepalive = kept;
  issues.warn(
    ['uplink', 'keepalive'],
    `${formatDuration(asked)} is outside 30s..20m, the keep-alive AWS IoT Core accepts; using ${formatDuration(kept)}`,
  );
}
