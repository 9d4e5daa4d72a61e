// What a reload changes (operations issue): two site configurations compared by key path, and each
// changed path sorted by how it can be applied. Only paths leave this module, never values: a
// path names a key (`uplink.key`), its value may be a secret. Pure, so it is tested on its own.

export type ChangeKind = 'added' | 'removed' | 'changed';

export interface ConfigChange {
  /** Dotted key path; list items that have an `id` are named by it: `sensors.boiler-temp`. */
  readonly path: string;
  readonly kind: ChangeKind;
}

/**
 * How a change is applied. `restart`: only a restart can apply it (the queue's identity, files and
 * sockets opened once); `uplink-connection`: the uplink reconnects with it; the others are applied
 * in place by their stage.
 */
export type ApplyBy =
  'restart' | 'uplink-connection' | 'uplink' | 'queue' | 'batcher' | 'sensors' | 'log' | 'identity';

/** Longest prefix wins; a path matches a prefix equal to it or followed by `.`. */
const RULES: readonly (readonly [string, ApplyBy])[] = [
  // The queue's identity: seq and records belong to this gateway id, this database, these keys.
  ['gateway.id', 'restart'],
  ['gateway.dataDir', 'restart'],
  ['gateway.profile', 'sensors'],
  ['uplink.url', 'uplink-connection'],
  ['uplink.alpn', 'uplink-connection'],
  ['uplink.ca', 'uplink-connection'],
  ['uplink.cert', 'uplink-connection'],
  ['uplink.key', 'uplink-connection'],
  ['uplink.keepalive', 'uplink-connection'],
  ['uplink.protocol', 'uplink-connection'],
  ['uplink.topic', 'uplink'],
  ['uplink.ackTimeout', 'uplink'],
  ['uplink.limits', 'uplink'],
  ['uplink.compression', 'uplink'],
  ['uplink.backoff', 'uplink'],
  ['queue.keyFile', 'restart'],
  ['queue.previousKeyFiles', 'restart'],
  ['queue.rotatedKeysDir', 'restart'],
  // fsync or not is chosen when LevelDB is opened and every commit relies on it.
  ['queue.durability', 'restart'],
  ['queue.maxBytes', 'queue'],
  ['queue.minFreeBytes', 'queue'],
  ['queue.whenFull', 'queue'],
  ['queue.flush', 'batcher'],
  ['queue.maxRecordReadings', 'batcher'],
  ['buses', 'sensors'],
  ['sensors', 'sensors'],
  // Sockets are bound once, with their modes, before the daemon says it is ready.
  ['status.socket', 'restart'],
  ['status.metrics', 'restart'],
  ['log.level', 'log'],
  // The stamping mode is settled at start: a change mid-run would mix two bases in one boot.
  ['clock', 'restart'],
  // Read when a provision or a rotation runs: nothing to apply in place.
  ['identity', 'identity'],
  // The shadow, jobs and Defender topics are subscribed once, at start.
  ['fleet', 'restart'],
];

/** The rule for `path`, or undefined when no rule names it (reload treats that as `restart`). */
export function ruleFor(path: string): ApplyBy | undefined {
  let best: readonly [string, ApplyBy] | undefined;
  for (const rule of RULES) {
    const [prefix] = rule;
    if ((path === prefix || path.startsWith(`${prefix}.`)) && prefix.length > (best?.[0].length ?? -1)) {
      best = rule;
    }
  }
  return best?.[1];
}

/** Every change between `before` and `after`, in a stable order (sorted by path). */
export function diffConfig(before: unknown, after: unknown): ConfigChange[] {
  const out: ConfigChange[] = [];
  walk(before, after, '', out);
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

export interface ReloadPlan {
  readonly changes: readonly ConfigChange[];
  /** Paths only a restart can apply: when there is one, nothing of the reload is applied. */
  readonly restartNeeded: readonly string[];
  /** The live changes by the stage that applies them. */
  readonly live: ReadonlyMap<Exclude<ApplyBy, 'restart'>, readonly string[]>;
}

export function planReload(changes: readonly ConfigChange[]): ReloadPlan {
  const restartNeeded: string[] = [];
  const live = new Map<Exclude<ApplyBy, 'restart'>, string[]>();
  for (const c of changes) {
    const by = ruleFor(c.path) ?? 'restart';
    if (by === 'restart') restartNeeded.push(c.path);
    else live.set(by, [...(live.get(by) ?? []), c.path]);
  }
  return { changes, restartNeeded, live };
}

/** `path (added)` / `path (removed)` / `path`: how a change is shown and logged. */
export function describeChange(c: ConfigChange): string {
  return c.kind === 'changed' ? c.path : `${c.path} (${c.kind})`;
}

function walk(a: unknown, b: unknown, path: string, out: ConfigChange[]): void {
  if (a === undefined && b === undefined) return;
  if (a === undefined) return void out.push({ path, kind: 'added' });
  if (b === undefined) return void out.push({ path, kind: 'removed' });
  const ka = byKey(a);
  const kb = byKey(b);
  if (ka === null || kb === null) {
    if (!sameValue(a, b)) out.push({ path, kind: 'changed' });
    return;
  }
  for (const k of new Set([...ka.keys(), ...kb.keys()])) {
    walk(ka.get(k), kb.get(k), path === '' ? k : `${path}.${k}`, out);
  }
}

/**
 * A mapping's entries by key; a list of objects that all have a string `id` by id (so inserting a
 * sensor does not shift every later one); null for anything compared as a whole value.
 */
function byKey(v: unknown): Map<string, unknown> | null {
  if (Array.isArray(v)) {
    const ids = v.map((item: unknown) => (isObject(item) && typeof item.id === 'string' ? item.id : null));
    if (v.length === 0 || ids.some((id) => id === null) || new Set(ids).size !== ids.length) return null;
    return new Map(v.map((item: unknown, i) => [ids[i]!, item]));
  }
  if (isObject(v)) return new Map(Object.entries(v));
  return null;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
