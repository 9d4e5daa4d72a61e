// YAML site file → validated, decoded, deep-frozen SiteConfig. Every problem is reported at once as
// FILE:LINE:COL: key.path: message, before anything touches hardware, disk or network.

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { LineCounter, isSeq, parseDocument, visit, type Document } from 'yaml';
import { EdgegwError, Exit } from '../errors.js';
import { packagePath } from '../package-root.js';
import { canonicalJson } from './canonical.js';
import { SiteSchema, type SiteConfig } from './schema.js';
import { ConfigError, IssueList, type ConfigIssue } from './issues.js';
import { keyFiles } from './key-files.js';
import { assertPrivateFile } from '../seal/keyfile.js';
import { checkStructure } from './structure.js';
import { checkRules } from './rules.js';
import { clampToBroker } from './clamps.js';
import { loadSiteProfile, resolvePaths, resolveProfileNames } from './references.js';
import type { BoardProfile } from './profile.js';

export { ConfigError, formatIssue, type ConfigIssue } from './issues.js';

export interface LoadedConfig {
  /** Absolute path of the config file. */
  readonly file: string;
  readonly config: SiteConfig;
  readonly profile: BoardProfile | null;
  readonly warnings: ConfigIssue[];
  /** configHash() of what was read: `edgegw status` shows it, the audit trail records it. */
  readonly hash: string;
  /**
   * The site file as it was read for this configuration, as plain data in its written form
   * (`'5s'`, not 5000) and without the overrides: what `reported` mirrors, even after the file on
   * disk was edited and not reloaded.
   */
  readonly document: unknown;
}

export interface LoadOptions {
  /** Dotted key paths (`uplink.url`, `buses.plc-sim.tcp.port`) set in the document before validation. */
  overrides?: Record<string, unknown>;
  /** `edgegw provision`: uplink.cert and uplink.key need not exist yet (it writes them). */
  identityMayBeMissing?: boolean;
  /** Folder of board profiles; defaults to the repository's hw-profiles/. */
  profilesDir?: string;
  /**
   * check-config and reload (the daemon's, `edgegw reload`): the private key files' modes too, by
   * the daemon's own check, so a key `edgegw run` would refuse is not called OK. Other commands
   * leave it to the daemon and doctor (a technician can still read `status` of a gateway whose key
   * mode is wrong).
   */
  keyModes?: boolean;
}

export const DEFAULT_CONFIG_PATH = '/etc/edgegw/site.yaml';

/** EDGEGW_CONFIG, else /etc/edgegw/site.yaml. */
export function defaultConfigPath(): string {
  return process.env.EDGEGW_CONFIG ?? DEFAULT_CONFIG_PATH;
}

/** The package's hw-profiles/ folder. */
export const DEFAULT_PROFILES_DIR = packagePath('hw-profiles');

export async function loadConfig(file: string, opts: LoadOptions = {}): Promise<LoadedConfig> {
  const abs = resolve(file);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new EdgegwError(
      'EDGEGW_E_CONFIG_READ',
      `cannot read the configuration file ${abs} (${why}); set EDGEGW_CONFIG or pass -c FILE to use another`,
      Exit.CONFIG,
      { cause: err },
    );
  }

  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const issues = new IssueList(abs, doc, lines);
  for (const e of doc.errors) issues.errorAtOffset(e.pos[0], '(yaml)', e.message.split('\n')[0] ?? e.code);
  if (issues.errors.length > 0) throw new ConfigError(issues.errors);

  const document = deepFreeze(toPlain(doc, issues));
  applyOverrides(doc, opts.overrides ?? {});
  const site = checkStructure(mqttVersion(tcpFrameDelay(toPlain(doc, issues))), issues);
  checkRules(site, issues);
  const profile = await loadSiteProfile(site, opts.profilesDir ?? DEFAULT_PROFILES_DIR, issues);
  resolveProfileNames(site, profile, issues);
  await resolvePaths(site, dirname(abs), issues, opts.identityMayBeMissing === true);
  if (issues.errors.length > 0) throw new ConfigError(sorted(issues.errors));

  let decoded: SiteConfig;
  try {
    decoded = Value.Decode(SiteSchema, site);
  } catch (err) {
    // Every check above should have caught what Decode refuses; never let its raw error through.
    issues.error([], `the configuration does not match the schema (${(err as Error).message})`);
    throw new ConfigError(issues.errors);
  }
  if (opts.keyModes === true) {
    await checkKeyModes(decoded, issues);
    if (issues.errors.length > 0) throw new ConfigError(sorted(issues.errors));
  }
  clampToBroker(decoded, issues);
  return {
    file: abs,
    config: deepFreeze(decoded),
    profile,
    warnings: sorted(issues.warnings),
    hash: configHash(text, profile, opts.overrides),
    document,
  };
}

/**
 * A short fingerprint of a configuration: the first 12 hex digits of SHA-256 over the site file's
 * text, the board profile and the overrides set over it (a remote overlay, sorted by key; none
 * leaves the hash of the file alone as it was). Equal hashes on two gateways mean the same
 * configuration.
 */
export function configHash(
  text: string,
  profile: BoardProfile | null,
  overrides: Readonly<Record<string, unknown>> = {},
): string {
  const h = createHash('sha256').update(text).update('\0').update(JSON.stringify(profile));
  if (Object.keys(overrides).length > 0) h.update('\0').update(canonicalJson(overrides));
  return h.digest('hex').slice(0, 12);
}

/**
 * The document as plain data. Aliases may expand to at most MAX_ALIAS_COUNT nodes in all: a
 * "billion laughs" document (aliases of aliases of lists) would take gigabytes to expand, and the
 * `yaml` package's guard throws a ReferenceError that is no config error unless it is made one here.
 */
function toPlain(doc: Document, issues: IssueList): unknown {
  // An alias inside its own anchor (`x: &a [*a]`) makes a cycle that every later step would recurse
  // into until the stack overflows; refuse it like a bomb.
  let cycle: number | undefined;
  visit(doc, {
    Alias(_key, node) {
      const target = node.resolve(doc);
      const [from, to] = target?.range ?? [];
      const at = node.range?.[0];
      if (from !== undefined && to !== undefined && at !== undefined && at >= from && at < to) {
        cycle = at;
        return visit.BREAK;
      }
      return undefined;
    },
  });
  if (cycle !== undefined) {
    issues.errorAtOffset(cycle, '(yaml)', 'this alias refers to the node that contains it: a cycle');
    throw new ConfigError(issues.errors);
  }
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    if (!(err instanceof ReferenceError)) throw err;
    let at: number | undefined;
    visit(doc, {
      Alias(_key, node) {
        at = node.range?.[0];
        return visit.BREAK;
      },
    });
    issues.errorAtOffset(
      at ?? 0,
      '(yaml)',
      `aliases here expand past ${MAX_ALIAS_COUNT} nodes (a YAML alias bomb?); write the values out`,
    );
    throw new ConfigError(issues.errors);
  }
}

/** Enough for anchors shared by a few dozen sensors; far below what hurts. */
const MAX_ALIAS_COUNT = 100;

function applyOverrides(doc: Document, overrides: Record<string, unknown>): void {
  for (const [dotted, value] of Object.entries(overrides)) {
    const path: (string | number)[] = [];
    for (const seg of dotted.split('.')) {
      // Digit segments index lists (`sensors.0.every`); elsewhere they are ordinary keys.
      path.push(/^[0-9]+$/.test(seg) && isSeq(doc.getIn(path, true)) ? Number(seg) : seg);
    }
    doc.setIn(path, value);
  }
}

function sorted(list: ConfigIssue[]): ConfigIssue[] {
  return [...list].sort((a, b) => a.line - b.line || a.col - b.col);
}

function deepFreeze<T>(o: T): T {
  if (o !== null && typeof o === 'object' && !Object.isFrozen(o)) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/**
 * `interFrameDelay` is RS-485 line silence; on Modbus TCP it only caps the bus (~177 requests/s at
 * 5 ms), so a TCP bus that does not set it gets 0 (the schema's 5 ms default is for RTU).
 */
function tcpFrameDelay(plain: unknown): unknown {
  const buses = (plain as { buses?: unknown } | null)?.buses;
  if (buses === null || typeof buses !== 'object') return plain;
  for (const bus of Object.values(buses as Record<string, unknown>)) {
    if (bus === null || typeof bus !== 'object') continue;
    const b = bus as Record<string, unknown>;
    if (b.tcp !== undefined && b.rtu === undefined && b.interFrameDelay === undefined)
      b.interFrameDelay = '0ms';
  }
  return plain;
}

/** `uplink.protocol: 5` is a YAML number; the schema's values are the strings '3.1.1' and '5'. */
function mqttVersion(plain: unknown): unknown {
  const uplink = (plain as { uplink?: unknown } | null)?.uplink;
  if (uplink !== null && typeof uplink === 'object') {
    const u = uplink as Record<string, unknown>;
    if (u.protocol === 5) u.protocol = '5';
  }
  return plain;
}

/** Each private key file as `edgegw run` checks it (assertPrivateFile): its mode, at its key. */
async function checkKeyModes(site: SiteConfig, issues: IssueList): Promise<void> {
  for (const k of keyFiles(site)) {
    try {
      await assertPrivateFile(k.path, 'the file');
    } catch (err) {
      if (!(err instanceof EdgegwError) || err.code !== 'EDGEGW_E_KEY_PERMS') throw err;
      issues.error(k.at, `${err.message} (edgegw run refuses it)`);
    }
  }
}
