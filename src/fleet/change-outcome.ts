// What becomes of a new desired document that has nothing to apply: its settable part runs
// already (or was refused or reverted before and is not tried again). Its outcome is still its
// own version's, and a key it refuses is audited; the first get after a start finds the outcome
// the last run reported in `reported` and keeps it, so a restart audits nothing twice. Pure.

import type { TriedChange } from './overlay-store.js';
import { getPath, isPlainObject, type RefusedKey } from './settable.js';
import type { ChangeReport } from './shadow-report.js';

export interface UnchangedInput {
  /** The shadow version of the get. */
  version: number;
  refused: readonly RefusedKey[];
  /** The refused or reverted change whose settable part this desired repeats, if so. */
  tried: TriedChange | null;
  /** The first get since the daemon started. */
  first: boolean;
  /** The shadow's `reported`, as the get returned it. */
  reported: unknown;
}

export interface UnchangedOutcome {
  /** The change to report; null keeps the one reported before. */
  change: ChangeReport | null;
  /** A `shadow-refused` audit entry is due (the refused keys are new). */
  audited: boolean;
}

export function unchangedOutcome(a: UnchangedInput): UnchangedOutcome {
  const refusedPaths = a.refused.map((r) => `${r.path} (${r.why})`);
  const before = a.first ? reportedChange(a.reported) : null;
  if (before !== null && before.result !== 'proving' && sameList(before.refused, refusedPaths))
    return { change: before, audited: false };
  if (refusedPaths.length === 0) {
    // Nothing refused, nothing to change: a refusal or revert reported before still stands.
    if (a.tried !== null || a.first) return { change: null, audited: false };
    return {
      change: { shadowVersion: a.version, result: 'applied', keys: [], refused: [] },
      audited: false,
    };
  }
  const reason =
    a.tried !== null
      ? `${a.tried.reason} (the settable keys are those of shadow version ${a.tried.shadowVersion}: not tried again)`
      : 'no settable key to change: every key listed in refused is set in the site file only';
  return {
    change: {
      shadowVersion: a.version,
      result: a.tried?.result ?? 'refused',
      keys: [],
      refused: refusedPaths,
      reason,
    },
    audited: true,
  };
}

/** `reported.edgegw.change` as the last report wrote it (shadow-report.ts), or null. */
export function reportedChange(reported: unknown): ChangeReport | null {
  const c = getPath(reported, 'edgegw.change');
  if (!isPlainObject(c) || typeof c.shadowVersion !== 'number' || !Array.isArray(c.keys)) return null;
  const result = c.result;
  if (result !== 'applied' && result !== 'refused' && result !== 'reverted' && result !== 'proving')
    return null;
  const strings = (v: unknown) =>
    Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : undefined;
  return {
    shadowVersion: c.shadowVersion,
    result,
    keys: strings(c.keys) ?? [],
    ...(Array.isArray(c.errors) ? { errors: strings(c.errors) } : {}),
    ...(Array.isArray(c.refused) ? { refused: strings(c.refused) } : {}),
    ...(typeof c.reason === 'string' ? { reason: c.reason } : {}),
  };
}

function sameList(a: readonly string[] | undefined, b: readonly string[]): boolean {
  return (a ?? []).length === b.length && (a ?? []).every((x, i) => x === b[i]);
}
