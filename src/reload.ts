// What a reload found and did (operations issue): the daemon's answer to SIGHUP and to the status
// socket's {"cmd":"reload"}, printed by `edgegw reload`. Key paths and counts only, never values.

export interface ReloadOutcome {
  /** The new configuration runs (possibly with no change at all). */
  applied: boolean;
  /** The file the daemon read (its own: `edgegw run -c FILE`). */
  file: string;
  /** Changed key paths, `path (added)` / `path (removed)` for whole entries. */
  changed: string[];
  /** Set when refused because only a restart can apply these key paths. */
  restartNeeded: string[];
  /** Set when refused because the file is invalid: FILE:LINE:COL: key: message, as check-config. */
  errors: string[];
  /** One line for the technician: what happened, or why not. */
  message: string;
  /** The running configuration's hash after this reload (the old one when refused). */
  hash: string;
}

/** `edgegw status`: which configuration runs, since when. */
export interface ConfigStatus {
  file: string;
  /** ms since the epoch. */
  loadedAt: number;
  hash: string;
}

export function isReloadOutcome(v: unknown): v is ReloadOutcome {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  return typeof r.applied === 'boolean' && Array.isArray(r.changed) && typeof r.message === 'string';
}
