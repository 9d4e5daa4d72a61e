// What the config names outside itself: the board profile (pin names, serial aliases) and files.

import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { EdgegwError } from '../errors.js';
import { listProfiles, loadProfile, type BoardProfile } from './profile.js';
import { didYouMean } from './suggest.js';
import { isObj, show, type Obj } from './structure.js';
import { KEY_MATERIAL_MESSAGE, hasPemBlock, looksLikeKeyMaterial } from './secrets.js';
import type { IssueList, KeyPath } from './issues.js';

/** Loads gateway.profile, if set; an unknown or broken profile is an error at its line. */
export async function loadSiteProfile(
  site: unknown,
  dir: string,
  issues: IssueList,
): Promise<BoardProfile | null> {
  const gw = isObj(site) && isObj(site.gateway) ? site.gateway : {};
  const name = gw.profile;
  if (typeof name !== 'string') return null;
  const available = await listProfiles(dir);
  if (!available.includes(name)) {
    const hint = didYouMean(name, available);
    const list = available.length > 0 ? available.join(', ') : `none in ${dir}`;
    issues.error(
      ['gateway', 'profile'],
      `unknown board profile ${show(name)}${hint ? `; did you mean \`${hint}\`?` : ''} (available: ${list})`,
    );
    return null;
  }
  try {
    return await loadProfile(name, dir);
  } catch (err) {
    issues.error(['gateway', 'profile'], err instanceof EdgegwError ? err.message : String(err));
    return null;
  }
}

/** Checks GPIO pin names and rewrites rtu.port aliases to device paths (in place). */
export function resolveProfileNames(site: unknown, profile: BoardProfile | null, issues: IssueList): void {
  if (!isObj(site)) return;
  // A named profile that failed to load is reported already; its names cannot be checked.
  if (!profile && isObj(site.gateway) && typeof site.gateway.profile === 'string') return;
  const needProfile = 'set gateway.profile to a board profile that names it';
  if (isObj(site.buses)) {
    for (const [name, bus] of Object.entries(site.buses)) {
      const rtu = isObj(bus) && isObj(bus.rtu) ? bus.rtu : undefined;
      const port = rtu?.port;
      if (!rtu || typeof port !== 'string' || port.startsWith('/')) continue;
      const path = ['buses', name, 'rtu', 'port'];
      const dev = profile?.serial[port];
      if (dev !== undefined) {
        rtu.port = dev;
      } else if (!profile) {
        issues.error(
          path,
          `${show(port)} is not an absolute device path (/dev/…) and no profile is set; ${needProfile}`,
        );
      } else {
        const hint = didYouMean(port, Object.keys(profile.serial));
        const known = Object.keys(profile.serial).join(', ') || 'none';
        issues.error(
          path,
          `${show(port)} is not a serial alias of profile ${profile.name}` +
            (hint ? `; did you mean \`${hint}\`?` : ` (aliases: ${known})`),
        );
      }
    }
  }
  if (!Array.isArray(site.sensors)) return;
  site.sensors.forEach((s: unknown, i) => {
    const pin = isObj(s) && isObj(s.gpio) ? s.gpio.pin : undefined;
    if (typeof pin !== 'string' || /^[0-9]+$/.test(pin)) return;
    const path = ['sensors', i, 'gpio', 'pin'];
    if (!profile) {
      issues.error(
        path,
        `${show(pin)} is a pin name but no profile is set; ${needProfile}, or use a sysfs number`,
      );
    } else if (profile.gpio[pin] === undefined) {
      const hint = didYouMean(pin, Object.keys(profile.gpio));
      issues.error(
        path,
        `${show(pin)} is not a pin of profile ${profile.name}${hint ? `; did you mean \`${hint}\`?` : ''}`,
      );
    }
  });
}

/** Keys whose files must exist and be readable (permission bits are checked elsewhere, exit 77). */
const FILE_KEYS: readonly KeyPath[] = [
  ['uplink', 'ca'],
  ['uplink', 'cert'],
  ['uplink', 'key'],
  ['queue', 'keyFile'],
];
/** Keys that are paths but need not exist yet. */
const PATH_KEYS: readonly KeyPath[] = [
  ['gateway', 'dataDir'],
  ['queue', 'rotatedKeysDir'],
  ['status', 'socket'],
  ['clock', 'syncFile'],
];

/** The device identity: files `edgegw provision` writes, so they may be missing before it runs. */
const IDENTITY_KEYS: readonly KeyPath[] = [FILE_KEYS[1]!, FILE_KEYS[2]!];

/** Lists of files: each item must exist and be readable, like a FILE_KEYS key. */
const FILE_LIST_KEYS: readonly KeyPath[] = [['queue', 'previousKeyFiles']];

function listItems(site: Obj, path: KeyPath): KeyPath[] {
  let cur: unknown = site;
  for (const seg of path) cur = isObj(cur) ? cur[String(seg)] : undefined;
  return Array.isArray(cur) ? cur.map((_, i) => [...path, i]) : [];
}

function slot(site: Obj, path: KeyPath): { parent: Obj; key: string } | undefined {
  let cur: unknown = site;
  for (const seg of path.slice(0, -1)) {
    cur = isObj(cur) || Array.isArray(cur) ? (cur as Record<string, unknown>)[String(seg)] : undefined;
  }
  const key = String(path.at(-1));
  // An array holding the file (a FILE_LIST_KEYS item) is written through like an object.
  const parent = isObj(cur) || Array.isArray(cur) ? (cur as Obj) : undefined;
  return parent !== undefined && typeof parent[key] === 'string' ? { parent, key } : undefined;
}

/** Makes relative paths absolute (against `dir`, the config file's folder) and checks named files. */
export async function resolvePaths(
  site: unknown,
  dir: string,
  issues: IssueList,
  identityMayBeMissing = false,
): Promise<void> {
  if (!isObj(site)) return;
  const mayBeMissing = identityMayBeMissing ? IDENTITY_KEYS : [];
  for (const path of [...PATH_KEYS, ...mayBeMissing]) {
    const s = slot(site, path);
    if (s) s.parent[s.key] = resolve(dir, s.parent[s.key] as string);
  }
  const files = [
    ...FILE_KEYS.filter((k) => !mayBeMissing.includes(k)),
    ...FILE_LIST_KEYS.flatMap((p) => listItems(site, p)),
  ];
  await Promise.all(
    files.map(async (path) => {
      const s = slot(site, path);
      if (!s) return;
      const written = s.parent[s.key] as string;
      // A pasted PEM is reported by rules.ts (checkNoPem); the path below would repeat it.
      if (hasPemBlock(written)) return;
      const abs = isAbsolute(written) ? written : resolve(dir, written);
      s.parent[s.key] = abs;
      const problem = await fileProblem(abs);
      if (problem === undefined) return;
      // A missing "file" named like base64 or hex is a pasted key: the path would repeat it.
      if (looksLikeKeyMaterial(written)) return issues.error(path, KEY_MATERIAL_MESSAGE);
      issues.error(path, `${abs}: ${problem}`);
    }),
  );
}

async function fileProblem(file: string): Promise<string | undefined> {
  try {
    const st = await stat(file);
    if (!st.isFile()) return 'is not a regular file';
    await access(file, constants.R_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'no such file';
    if (code === 'EACCES') return 'not readable by this user (permission denied)';
    return `cannot be read (${code ?? 'error'})`;
  }
}
