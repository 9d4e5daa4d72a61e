// What a remote change may set (issue 11): a shadow's `desired` document split into an overlay of
// settable key paths and the paths refused, and the running configuration's settable part as the
// shadow's `reported` mirrors it. Pure, so it is tested on its own.
//
// An overlay maps dotted key paths to values (`queue.flush: '5s'`, `sensors: [...]`,
// `buses.plc.tcp.port: 5020`), applied to the site file's document before validation
// (config/load.ts `overrides`), exactly as if the file said so. Objects are set leaf by leaf, so a
// desired `{uplink: {limits: {inflight: 8}}}` keeps the file's other limits; lists (`sensors`) are
// whole values, as in the shadow (AWS compares and replaces arrays whole).

import { createHash } from 'node:crypto';
import type { TSchema } from '@sinclair/typebox';
import { canonicalJson } from '../config/canonical.js';
import { SiteSchema } from '../config/schema.js';

/**
 * The remotely settable key paths; a desired value anywhere else is refused, and so is a file path
 * below them (FILE_LEAVES).
 */
export const SETTABLE: readonly string[] = [
  'sensors',
  'buses',
  'uplink.limits',
  'uplink.backoff',
  'queue.flush',
  'queue.whenFull',
  'log.level',
];

/** Settable paths set as one value, never leaf by leaf (a list; a scalar key). */
const WHOLE: readonly string[] = ['sensors', 'queue.flush', 'queue.whenFull', 'log.level'];

export type Overlay = Readonly<Record<string, unknown>>;

export interface RefusedKey {
  path: string;
  why: 'not-settable' | 'local-only';
}

export interface DesiredSplit {
  overlay: Record<string, unknown>;
  refused: RefusedKey[];
}

/**
 * Leaves the schema marks as a file path (`filePath`) or a secret file, as dotted patterns with `*`
 * for a list item or a mapping entry (`buses.*.rtu.port`): never set remotely, even under a
 * settable section, since a path would point the daemon at another file or device of the gateway.
 */
export const FILE_LEAVES: readonly string[] = fileLeafPatterns(SiteSchema, []);

function fileLeafPatterns(s: TSchema, at: string[]): string[] {
  if (s.filePath === true || s.secret === true) return [at.join('.')];
  const out: string[] = [];
  for (const [k, x] of Object.entries((s.properties ?? {}) as Record<string, TSchema>))
    out.push(...fileLeafPatterns(x, [...at, k]));
  for (const x of Object.values((s.patternProperties ?? {}) as Record<string, TSchema>))
    out.push(...fileLeafPatterns(x, [...at, '*']));
  const items = s.items as TSchema | TSchema[] | undefined;
  if (items !== undefined && !Array.isArray(items)) out.push(...fileLeafPatterns(items, [...at, '*']));
  for (const x of (s.anyOf ?? []) as TSchema[]) out.push(...fileLeafPatterns(x, at));
  return [...new Set(out)];
}

/** The file-path leaves a desired value at `path` sets: `path` itself, or leaves inside it. */
function fileLeavesIn(path: string, value: unknown): string[] {
  const segs = path.split('.');
  const out: string[] = [];
  const collect = (v: unknown, rest: string[], at: string): void => {
    if (v === undefined) return;
    if (rest.length === 0) return void out.push(at);
    const [head, ...tail] = rest;
    if (Array.isArray(v) || isPlainObject(v)) {
      for (const [k, x] of Object.entries(v)) if (head === '*' || head === k) collect(x, tail, `${at}.${k}`);
    }
  };
  for (const pattern of FILE_LEAVES) {
    const p = pattern.split('.');
    if (p.length >= segs.length && segs.every((seg, i) => p[i] === '*' || p[i] === seg))
      collect(value, p.slice(segs.length), path);
  }
  return out;
}

/** True when `path` is `prefix` or below it. */
export function under(path: string, prefix: string): boolean {
  return path === prefix || path.startsWith(`${prefix}.`);
}

/** `desired` as an overlay of settable paths, minus the local-only ones; the rest refused. */
export function splitDesired(desired: unknown, localOnly: readonly string[]): DesiredSplit {
  const overlay: Record<string, unknown> = {};
  const refused: RefusedKey[] = [];
  const walk = (v: unknown, path: string): void => {
    // Lists, scalars and the settable scalars' own paths are whole values.
    if (isPlainObject(v) && !WHOLE.includes(path)) {
      for (const [k, x] of Object.entries(v)) {
        // A dotted key would be read as two levels by the overrides: never set remotely.
        if (k.includes('.') || k === '')
          refused.push({ path: path === '' ? k : `${path}.${k}`, why: 'not-settable' });
        else walk(x, path === '' ? k : `${path}.${k}`);
      }
      return;
    }
    if (path === '') return;
    if (!SETTABLE.some((s) => under(path, s))) return void refused.push({ path, why: 'not-settable' });
    if (localOnly.some((l) => under(path, l) || under(l, path)))
      return void refused.push({ path, why: 'local-only' });
    const files = fileLeavesIn(path, v);
    if (files.length > 0) for (const f of files) refused.push({ path: f, why: 'not-settable' });
    else overlay[path] = v;
  };
  walk(desired, '');
  return { overlay, refused };
}

/**
 * The settable part of a site document (plain data, as the file writes it: `'5s'`, not 5000) with
 * `overlay` applied: what `reported` shows, in the shape `desired` is written in, so a desired
 * value that is applied leaves no delta. Keys the site file keeps local (`localOnly`) are not
 * remotely settable on this gateway and are left out: a site with many sensors keeps its shadow
 * under the 8 KB of desired + reported by listing `sensors` there.
 */
export function settableView(
  plainSite: unknown,
  overlay: Overlay,
  localOnly: readonly string[] = [],
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const path of SETTABLE) {
    const v = getPath(plainSite, path);
    if (v !== undefined) setPath(out, path, structuredClone(v));
  }
  for (const [path, v] of Object.entries(overlay)) setPath(out, path, structuredClone(v));
  for (const local of localOnly) {
    // `sensors` is one value (a list): one local sensor keeps the whole list local.
    const path = under(local, 'sensors') ? 'sensors' : local;
    const parts = path.split('.');
    const chain: Record<string, unknown>[] = [out];
    for (const k of parts.slice(0, -1)) {
      const next = chain[chain.length - 1]![k];
      if (!isPlainObject(next)) break;
      chain.push(next);
    }
    if (chain.length !== parts.length) continue;
    delete chain[chain.length - 1]![parts[parts.length - 1]!];
    // A section left empty goes too (`queue: {}` would say nothing).
    for (let i = chain.length - 1; i > 0 && Object.keys(chain[i]!).length === 0; i--)
      delete chain[i - 1]![parts[i - 1]!];
  }
  return out;
}

/**
 * The paths to delete from a shadow's `reported` (set to null): settable leaves it holds that the
 * view `next` no longer has (a bus removed, an overlay key dropped).
 */
export function staleReported(reported: unknown, next: Record<string, unknown>): string[] {
  const stale: string[] = [];
  const walk = (v: unknown, path: string): void => {
    if (path !== '') {
      const inside = SETTABLE.some((s) => under(path, s));
      // Keys beside the settable ones (edgegw, anything a person wrote) are not ours to delete.
      if (!inside && !SETTABLE.some((s) => s.startsWith(`${path}.`))) return;
      if (inside && getPath(next, path) === undefined) return void stale.push(path);
    }
    if (isPlainObject(v) && path !== 'sensors') {
      for (const [k, x] of Object.entries(v)) walk(x, path === '' ? k : `${path}.${k}`);
    }
  };
  walk(reported, '');
  return stale;
}

/** A short, order-independent fingerprint of an overlay (which desired state was tried). */
export function overlayHash(overlay: Overlay): string {
  return createHash('sha256').update(canonicalJson(overlay)).digest('hex').slice(0, 16);
}

export function sameOverlay(a: Overlay, b: Overlay): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

/** The paths of an overlay whose change reconnects or retunes the uplink (a revert guards them). */
export function touchesUplink(paths: readonly string[]): boolean {
  return paths.some((p) => under(p.replace(/ \((added|removed)\)$/, ''), 'uplink'));
}

export function getPath(root: unknown, path: string): unknown {
  let v = root;
  for (const seg of path.split('.')) {
    if (!isPlainObject(v)) return undefined;
    v = v[seg];
  }
  return v;
}

export function setPath(root: Record<string, unknown>, path: string, value: unknown): void {
  const segs = path.split('.');
  let o = root;
  for (const seg of segs.slice(0, -1)) {
    const next = o[seg];
    if (!isPlainObject(next)) o[seg] = {};
    o = o[seg] as Record<string, unknown>;
  }
  o[segs[segs.length - 1]!] = value;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
