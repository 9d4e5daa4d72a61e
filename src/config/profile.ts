// Board profiles (hw-profiles/<name>.yaml): pin names and serial-port aliases for one kind of board.
// A pin is a line offset on a named GPIO chip, not a sysfs number: since Linux 6.6 (and on the
// Raspberry Pi 5 always) sysfs numbers are offset by the chip's base, which is only known at run time.
// resolvePin() reads the base from /sys/class/gpio/gpiochip*/{label,base}.

import { readFileSync, readdirSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { LineCounter, parseDocument } from 'yaml';
import { EdgegwError, Exit } from '../errors.js';
import { didYouMean } from './suggest.js';

/** One GPIO controller as the kernel names it (the `label` file of its gpiochip). */
export interface GpioChip {
  /** Labels this chip has had across kernels (e.g. `pinctrl-bcm2711`); any one matches. */
  readonly labels: readonly string[];
  /** The base to assume when sysfs shows no chip with one of `labels`. */
  readonly defaultBase: number;
  /** Number of lines (offsets 0..lines-1). */
  readonly lines: number;
}

/** A pin: line `line` of chip `chip` (a key of BoardProfile.chips). */
export interface PinRef {
  readonly chip: string;
  readonly line: number;
}

export interface BoardProfile {
  readonly name: string;
  readonly description: string;
  /** Absolute path of the profile file. */
  readonly file: string;
  readonly chips: Readonly<Record<string, GpioChip>>;
  /** Pin name (e.g. GPIO17, P9_12) to its chip line; use resolvePin() for the sysfs number. */
  readonly gpio: Readonly<Record<string, PinRef>>;
  /** Serial alias (e.g. serial0) to device path. */
  readonly serial: Readonly<Record<string, string>>;
}

const Name = Type.String({ pattern: '^[A-Za-z0-9_.-]+$' });

const ProfileFile = Type.Object(
  {
    description: Type.String(),
    chips: Type.Record(
      Name,
      Type.Object(
        {
          labels: Type.Array(Type.String(), { minItems: 1 }),
          defaultBase: Type.Integer({ minimum: 0 }),
          lines: Type.Integer({ minimum: 1 }),
        },
        { additionalProperties: false },
      ),
      { default: {} },
    ),
    pins: Type.Record(
      Name,
      Type.Object(
        { chip: Type.String(), line: Type.Integer({ minimum: 0 }) },
        { additionalProperties: false },
      ),
      { default: {} },
    ),
    // `{ prefix: GPIO, chip: main, from: 0, to: 27 }` names GPIO0..GPIO27 after their line offsets.
    pinRanges: Type.Array(
      Type.Object(
        {
          prefix: Type.String(),
          chip: Type.String(),
          from: Type.Integer({ minimum: 0 }),
          to: Type.Integer({ minimum: 0 }),
        },
        { additionalProperties: false },
      ),
      { default: [] },
    ),
    serial: Type.Record(Name, Type.String({ pattern: '^/' }), { default: {} }),
  },
  { additionalProperties: false },
);
type ProfileFileShape = Static<typeof ProfileFile>;

const PROFILE_EXT = '.yaml';

/** Names of the profiles in `dir` (file names without `.yaml`), sorted. */
export async function listProfiles(dir: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return [];
  }
  return entries
    .filter((f) => f.endsWith(PROFILE_EXT))
    .map((f) => basename(f, PROFILE_EXT))
    .sort();
}

function profileError(file: string, message: string): EdgegwError {
  return new EdgegwError('EDGEGW_E_CONFIG', `${file}: ${message}`, Exit.CONFIG);
}

/** Loads and checks hw-profiles/<name>.yaml. Throws EdgegwError (EDGEGW_E_CONFIG) when it is wrong. */
export async function loadProfile(name: string, dir: string): Promise<BoardProfile> {
  if (!/^[A-Za-z0-9_.-]+$/.test(name) || name.startsWith('.')) {
    throw profileError(dir, `"${name}" is not a profile name`);
  }
  const file = join(dir, name + PROFILE_EXT);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new EdgegwError('EDGEGW_E_CONFIG', `cannot read board profile ${file}`, Exit.CONFIG, {
      cause: err,
    });
  }
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc });
  const first = doc.errors[0];
  if (first) {
    const p = lc.linePos(first.pos[0]);
    throw profileError(`${file}:${p.line}:${p.col}`, first.message.split('\n')[0] ?? 'YAML syntax error');
  }
  const raw = Value.Default(ProfileFile, doc.toJS() ?? {});
  const problems = [...Value.Errors(ProfileFile, raw)].map((e) => `${e.path || '/'}: ${e.message}`);
  if (problems.length > 0) throw profileError(file, problems.slice(0, 5).join('; '));
  return buildProfile(name, file, raw as ProfileFileShape);
}

function buildProfile(name: string, file: string, p: ProfileFileShape): BoardProfile {
  const gpio: Record<string, PinRef> = {};
  const add = (pin: string, chip: string, line: number) => {
    const c = p.chips[chip];
    if (!c) throw profileError(file, `pin ${pin} names unknown chip "${chip}"`);
    if (line >= c.lines)
      throw profileError(file, `pin ${pin}: line ${line} is past chip ${chip} (${c.lines} lines)`);
    if (gpio[pin]) throw profileError(file, `pin ${pin} is defined twice`);
    gpio[pin] = { chip, line };
  };
  for (const r of p.pinRanges)
    for (let line = r.from; line <= r.to; line++) add(`${r.prefix}${line}`, r.chip, line);
  for (const [pin, ref] of Object.entries(p.pins)) add(pin, ref.chip, ref.line);
  return deepFreeze({
    name,
    description: p.description.trim(),
    file,
    chips: p.chips,
    gpio,
    serial: p.serial,
  });
}

function deepFreeze<T>(o: T): T {
  if (o !== null && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/** Chip label → base, as sysfs shows them now. Empty when there is no sysfs GPIO (not a GPIO board). */
export function readChipBases(sysfsRoot = '/sys/class/gpio'): Map<string, number> {
  const bases = new Map<string, number>();
  let entries: string[];
  try {
    entries = readdirSync(sysfsRoot);
  } catch {
    return bases;
  }
  for (const e of entries.filter((n) => n.startsWith('gpiochip')).sort()) {
    try {
      const label = readFileSync(join(sysfsRoot, e, 'label'), 'utf8').trim();
      const base = Number(readFileSync(join(sysfsRoot, e, 'base'), 'utf8').trim());
      if (label && Number.isInteger(base) && !bases.has(label)) bases.set(label, base);
    } catch {
      // A chip without readable label/base is of no use to us; skip it.
    }
  }
  return bases;
}

/**
 * The sysfs GPIO number for a pin: numbers (and digit strings) pass through; a name goes through the
 * profile to chip + line, and the chip's base is read from `<sysfsRoot>/gpiochip*` (falling back to
 * the profile's default base when sysfs shows no chip with a matching label).
 */
export function resolvePin(
  profile: BoardProfile | null,
  pin: string | number,
  sysfsRoot = '/sys/class/gpio',
): number {
  if (typeof pin === 'number') return pin;
  if (/^[0-9]+$/.test(pin)) return Number(pin);
  if (!profile) {
    throw new EdgegwError(
      'EDGEGW_E_GPIO',
      `GPIO pin "${pin}" is a name, but no board profile is set (gateway.profile); use a sysfs number or set one`,
      Exit.CONFIG,
    );
  }
  const ref = profile.gpio[pin];
  const chip = ref ? profile.chips[ref.chip] : undefined;
  if (!ref || !chip) {
    const hint = didYouMean(pin, Object.keys(profile.gpio));
    throw new EdgegwError(
      'EDGEGW_E_GPIO',
      `GPIO pin "${pin}" is not in board profile ${profile.name}${hint ? `; did you mean \`${hint}\`?` : ''}`,
      Exit.CONFIG,
    );
  }
  const bases = readChipBases(sysfsRoot);
  const label = chip.labels.find((l) => bases.has(l));
  const base = label === undefined ? chip.defaultBase : (bases.get(label) ?? chip.defaultBase);
  return base + ref.line;
}
