// Structural validation against SiteSchema with TypeBox Value.Errors, after defaults, turned into
// messages a person can act on. Sensors are checked one by one against the branch their keys pick
// (bus → Modbus, gpio → GPIO, sim → simulated), so errors speak of that branch, not of an anyOf.

import { Type, type TSchema } from '@sinclair/typebox';
import { Value, ValueErrorType, type ValueError } from '@sinclair/typebox/value';
import { GpioSensor, ID_PATTERN, ModbusSensor, SENSOR_ID_PATTERN, SimSensor, SiteSchema } from './schema.js';
import { DURATION_PATTERN, SIZE_PATTERN } from './units.js';
import { didYouMean } from './suggest.js';
import { checkRanges } from './ranges.js';
import { looksLikeKeyMaterial } from './secrets.js';
import type { IssueList, KeyPath } from './issues.js';

/** SiteSchema with sensor items left open: they are checked by branch below. */
const SiteShell = Type.Object(
  { ...SiteSchema.properties, sensors: Type.Array(Type.Unknown(), { default: [] }) },
  { additionalProperties: false },
);

const BusSchema = Object.values(SiteSchema.properties.buses.patternProperties)[0] as TSchema;

export const SENSOR_BRANCHES = [
  ['bus', ModbusSensor],
  ['gpio', GpioSensor],
  ['sim', SimSensor],
] as const;

export type Obj = Record<string, unknown>;
export const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Validates `raw` (a plain copy of the YAML document); returns it with schema defaults applied. */
export function checkStructure(raw: unknown, issues: IssueList): unknown {
  if (!isObj(raw)) {
    issues.error(
      [],
      'the configuration must be a YAML mapping with gateway, uplink, queue, buses and sensors',
    );
    return raw;
  }
  const site = Value.Default(SiteShell, Value.Clone(raw));
  // TypeBox's Value.Default skips Record values whose schema has no `default` of its own.
  if (isObj(site) && isObj(site.buses)) {
    for (const [name, bus] of Object.entries(site.buses)) site.buses[name] = Value.Default(BusSchema, bus);
  }
  report(SiteShell, site, [], issues);
  if (isObj(site) && Array.isArray(site.sensors)) {
    site.sensors = site.sensors.map((s, i) => checkSensor(s, i, issues));
  }
  return site;
}

function checkSensor(item: unknown, i: number, issues: IssueList): unknown {
  const path = ['sensors', i];
  if (!isObj(item)) {
    issues.error(path, 'a sensor is a mapping with `id` and one of `bus`, `gpio` or `sim`');
    return item;
  }
  const kinds = SENSOR_BRANCHES.filter(([k]) => k in item);
  const first = kinds[0];
  if (!first) {
    issues.error(path, 'a sensor needs one of `bus` (Modbus), `gpio` or `sim`; it has none');
    return item;
  }
  if (kinds.length > 1) {
    const names = kinds.map(([k]) => `\`${k}\``).join(' and ');
    issues.error(path, `a sensor is exactly one kind, but this one has ${names}`);
    return item;
  }
  const schema = first[1];
  const s = Value.Default(schema, item) as Obj;
  if (first[0] === 'bus' && s.type === undefined && typeof s.table === 'string') {
    // Bits (coil, discrete) are bool; registers (holding, input) default to uint16.
    s.type = s.table === 'coil' || s.table === 'discrete' ? 'bool' : 'uint16';
  }
  report(schema, s, path, issues);
  return s;
}

function report(schema: TSchema, value: unknown, prefix: KeyPath, issues: IssueList): void {
  const seen = new Set<string>();
  const errors = [...Value.Errors(schema, value)];
  // A missing key also fails its type check: report it once, as missing.
  for (const e of errors) if (e.type === ValueErrorType.ObjectRequiredProperty) seen.add(e.path);
  for (const e of errors)
    if (e.type === ValueErrorType.ObjectRequiredProperty) toIssue(e, value, prefix, issues);
  for (const e of errors) {
    if (seen.has(e.path) || [...seen].some((p) => e.path.startsWith(p + '/'))) continue;
    seen.add(e.path);
    toIssue(e, value, prefix, issues);
  }
  checkRanges(schema, value, prefix, issues);
}

function segments(pointer: string, root: unknown): (string | number)[] {
  const out: (string | number)[] = [];
  let cur: unknown = root;
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(cur) && /^[0-9]+$/.test(seg)) {
      out.push(Number(seg));
      cur = cur[Number(seg)];
    } else {
      out.push(seg);
      cur = isObj(cur) ? cur[seg] : undefined;
    }
  }
  return out;
}

/**
 * A short description of a value for a message; never used for secret keys. Every message that
 * quotes a config value goes through here, so key material pasted anywhere is never repeated.
 */
export function show(v: unknown): string {
  if (v === null || v === undefined) return 'an empty value';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string' && looksLikeKeyMaterial(v))
    return 'a value that looks like key material (not shown)';
  const s = typeof v === 'string' ? `"${v}"` : (JSON.stringify(v) ?? typeof v);
  return s.length > 60 ? `${s.slice(0, 57)}…"` : s;
}

const TYPE_NAMES: Partial<Record<ValueErrorType, string>> = {
  [ValueErrorType.String]: 'a string',
  [ValueErrorType.Number]: 'a number',
  [ValueErrorType.Integer]: 'an integer',
  [ValueErrorType.Boolean]: 'true or false',
  [ValueErrorType.Object]: 'a mapping',
  [ValueErrorType.Array]: 'a list',
};

function toIssue(e: ValueError, root: unknown, prefix: KeyPath, issues: IssueList): void {
  const rel = segments(e.path, root);
  const path = [...prefix, ...rel];
  const last = rel.at(-1);
  const secret = (e.schema as { secret?: boolean }).secret === true;
  const got = secret ? 'a value' : show(e.value);
  const expected = TYPE_NAMES[e.type];
  if (expected !== undefined) return issues.error(path, `expected ${expected}, got ${got}`);

  if (e.type === ValueErrorType.ObjectRequiredProperty) {
    const desc = (e.schema as { description?: string }).description;
    return issues.error(
      path,
      `missing required key \`${String(last)}\`${desc ? ` (${desc})` : ''}`,
      'parent',
    );
  }
  if (e.type === ValueErrorType.ObjectAdditionalProperties) {
    const known = Object.keys((e.schema as { properties?: object }).properties ?? {});
    const name = String(last);
    if (looksLikeKeyMaterial(name) || name.length > 64) {
      const what = looksLikeKeyMaterial(name)
        ? 'that looks like key material'
        : `of ${name.length} characters`;
      return issues.error(path, `an unknown key ${what} (not shown); known keys: ${known.join(', ')}`, 'key');
    }
    const hint = didYouMean(name, known);
    const tail = hint ? `; did you mean \`${hint}\`?` : `; known keys: ${known.join(', ')}`;
    return issues.error(path, `unknown key \`${name}\`${tail}`, 'key');
  }
  if (e.type === ValueErrorType.StringMaxLength) {
    const max = (e.schema as { maxLength?: number }).maxLength ?? 0;
    const len = typeof e.value === 'string' ? e.value.length : 0;
    return issues.error(path, `a value of ${len} characters is too long: at most ${max}`);
  }
  if (e.type === ValueErrorType.StringMinLength) return issues.error(path, 'must not be empty');
  if (e.type === ValueErrorType.StringPattern) {
    return issues.error(path, patternMessage((e.schema as { pattern?: string }).pattern, got));
  }
  if (e.type === ValueErrorType.Union) return issues.error(path, unionMessage(e.schema, got, path));
  const bound = e.message.replace(/^Expected \w+ to be /, 'must be ');
  if (TOO_SMALL.has(e.type)) return issues.error(path, `${got} is too small: ${bound}`);
  if (TOO_LARGE.has(e.type)) return issues.error(path, `${got} is too large: ${bound}`);
  return issues.error(path, `${got}: ${e.message}`);
}

const TOO_SMALL = new Set([
  ValueErrorType.IntegerMinimum,
  ValueErrorType.IntegerExclusiveMinimum,
  ValueErrorType.NumberMinimum,
  ValueErrorType.NumberExclusiveMinimum,
]);
const TOO_LARGE = new Set([
  ValueErrorType.IntegerMaximum,
  ValueErrorType.IntegerExclusiveMaximum,
  ValueErrorType.NumberMaximum,
  ValueErrorType.NumberExclusiveMaximum,
]);

const PATTERN_MESSAGES: Record<string, (got: string) => string> = {
  [DURATION_PATTERN]: (got) =>
    `${got} is not a duration; write a number and a unit, e.g. 250ms, 1s, 2m or 1h`,
  [SIZE_PATTERN]: (got) =>
    `${got} is not a size; write a whole number and a unit, e.g. 512B, 64KiB, 256MiB or 1GiB`,
  [ID_PATTERN]: (got) =>
    `${got} is not an id AWS IoT Core accepts as a client id: ` +
    'use 1 to 128 of the characters A-Z a-z 0-9 _ : - (and never start with $)',
  [SENSOR_ID_PATTERN]: (got) =>
    `${got} is not a sensor id: use 1 to 64 of the characters A-Z a-z 0-9 _ . : -`,
};

function patternMessage(pattern: string | undefined, got: string): string {
  const known = pattern === undefined ? undefined : PATTERN_MESSAGES[pattern];
  return known ? known(got) : `${got} does not match the pattern ${pattern ?? '?'}`;
}

function unionMessage(schema: TSchema, got: string, path: KeyPath): string {
  const options = (schema.anyOf as TSchema[] | undefined) ?? [];
  const literals = options.map((o) => (o as { const?: unknown }).const);
  if (literals.length > 0 && literals.every((l) => l !== undefined)) {
    return `${got} is not one of: ${literals.map((l) => String(l as string | number)).join(', ')}`;
  }
  if (path.at(-1) === 'pin')
    return `${got} is not a pin: write a profile pin name (GPIO17) or a sysfs GPIO number`;
  return `${got} has the wrong type`;
}
