// Writes config/site.schema.json (for editors) and the README's configuration reference, both from
// SiteSchema. `--check` writes nothing and exits 1 naming the stale file: CI keeps them current.
//
//   node dist/src/config/export-schema.js [--check]

import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { TSchema } from '@sinclair/typebox';
import { packagePath } from '../package-root.js';
import { SiteSchema } from './schema.js';
import { DURATION_PATTERN, SIZE_PATTERN, rangeOf } from './units.js';

export const SCHEMA_FILE = packagePath('config', 'site.schema.json');
export const README_FILE = packagePath('README.md');

const BEGIN = /^<!-- BEGIN config-reference.*-->$/m;
const END = /^<!-- END config-reference -->$/m;

/** The JSON Schema for editors: SiteSchema as JSON (TypeBox's symbol keys drop out), 2-space. */
export function renderJsonSchema(): string {
  const doc = { $schema: 'http://json-schema.org/draft-07/schema#', ...SiteSchema };
  return JSON.stringify(doc, (_key, value: unknown) => optionalDefaults(value), 2) + '\n';
}

/** TypeBox lists defaulted keys as required; for an editor, a key with a default may be left out. */
function optionalDefaults(value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const o = value as { required?: string[]; properties?: Record<string, { default?: unknown }> };
  if (!o.required || !o.properties) return value;
  const props = o.properties;
  const required = o.required.filter((k) => props[k]?.default === undefined);
  const { required: _dropped, ...rest } = o;
  return required.length > 0 ? { ...rest, required } : rest;
}

interface Row {
  path: string;
  type: string;
  def: string;
  description: string;
}

type Props = Record<string, TSchema>;

function typeOf(s: TSchema): string {
  const anyOf = s.anyOf as TSchema[] | undefined;
  if (anyOf) {
    const consts = anyOf.map((o) => o.const as unknown);
    if (consts.every((c) => c !== undefined))
      return consts.map((c) => `\`${typeof c === 'string' ? c : JSON.stringify(c)}\``).join(' \\| ');
    return anyOf.map(typeOf).join(' \\| ');
  }
  const range = rangeOf(s);
  const within = range ? ` ${range[0]}..${range[1]}` : '';
  if (s.pattern === DURATION_PATTERN) return `duration${within}`;
  if (s.pattern === SIZE_PATTERN) return `size${within}`;
  const type = s.type as string | undefined;
  if ((type === 'integer' || type === 'number') && (s.minimum !== undefined || s.maximum !== undefined)) {
    const lo = (s.minimum ?? s.exclusiveMinimum ?? '') as number | string;
    const hi = (s.maximum ?? '') as number | string;
    return `${type} ${lo}..${hi}`;
  }
  if (type === 'string' && typeof s.maxLength === 'number') return `string ≤ ${s.maxLength} chars`;
  if (type === 'object' && s.patternProperties) return 'mapping of name → object';
  if (type === 'array') return 'list';
  return type ?? 'any';
}

function defaultOf(s: TSchema, required: boolean, path: string): string {
  // Set by the loader from `table`, so the schema cannot say it.
  if (path === 'sensors[].type') return '`bool` for coil/discrete, else `uint16`';
  if (s.default !== undefined) {
    const d = s.default as unknown;
    return `\`${typeof d === 'string' ? d : JSON.stringify(d)}\``;
  }
  return required ? '**required**' : '—';
}

function walk(props: Props, required: readonly string[], prefix: string, rows: Row[]): void {
  for (const [key, s] of Object.entries(props)) {
    const path = prefix ? `${prefix}.${key}` : key;
    const secret = s.secret === true ? ' *(secret file: never printed)*' : '';
    const description = String(s.description ?? '') + secret;
    rows.push({ path, type: typeOf(s), def: defaultOf(s, required.includes(key), path), description });
    if (s.type === 'object' && s.properties) {
      walk(s.properties as Props, (s.required as string[] | undefined) ?? [], path, rows);
    }
    const pattern = s.patternProperties as Props | undefined;
    const inner = pattern ? Object.values(pattern)[0] : undefined;
    if (inner?.properties) {
      walk(inner.properties as Props, (inner.required as string[] | undefined) ?? [], `${path}.<name>`, rows);
    }
  }
}

const BRANCH_TITLES = ['Modbus sensor (`bus`)', 'GPIO sensor (`gpio`)', 'Simulated sensor (`sim`)'];

/** Markdown reference of every key, generated from the schema. */
export function renderConfigReference(): string {
  const table = (rows: Row[]) =>
    [
      '| Key | Type | Default | Description |',
      '|---|---|---|---|',
      ...rows.map((r) => `| \`${r.path}\` | ${r.type} | ${r.def} | ${r.description.replace(/\|/g, '\\|')} |`),
    ].join('\n');
  const { sensors, ...rest } = SiteSchema.properties;
  const top: Row[] = [];
  walk(rest, SiteSchema.required ?? [], '', top);
  const out = [
    'Durations are written like `250ms`, `1s`, `2m`, `1h`; sizes like `512KiB`, `256MiB`. Each has the',
    'range its Type column shows (`check-config` refuses a value outside it). Relative paths',
    "resolve against the config file's folder. Paths, names and other strings are bounded in length;",
    'a value that looks like key material (a PEM block, a base64 or hex key) is refused and never printed.',
    '',
    table(top),
    '',
    `\`sensors\` (${typeOf(sensors)}, default \`[]\`): ${String(sensors.description)} Each item is one`,
    'kind, chosen by which key it has: `bus`, `gpio` or `sim`.',
  ];
  const branches = (sensors.items as TSchema).anyOf as TSchema[];
  branches.forEach((b, i) => {
    const rows: Row[] = [];
    walk(b.properties as Props, (b.required as string[] | undefined) ?? [], 'sensors[]', rows);
    out.push(
      '',
      `**${BRANCH_TITLES[i] ?? String(b.description)}**: ${String(b.description)}`,
      '',
      table(rows),
    );
  });
  return out.join('\n') + '\n';
}

/** `readme` with the text between the config-reference markers replaced by `section`. */
export function spliceReadme(readme: string, section: string): string {
  const begin = BEGIN.exec(readme);
  const end = END.exec(readme);
  if (!begin || !end || end.index < begin.index) {
    throw new Error(
      'README.md lacks the <!-- BEGIN config-reference … --> / <!-- END config-reference --> lines',
    );
  }
  const from = begin.index + begin[0].length;
  return `${readme.slice(0, from)}\n${section}${readme.slice(end.index)}`;
}

/** Writes (or, with check, compares) both files; returns the stale ones. */
export function exportSchema(check: boolean): string[] {
  const stale: string[] = [];
  const wanted: [string, string][] = [
    [SCHEMA_FILE, renderJsonSchema()],
    [README_FILE, spliceReadme(readFileSync(README_FILE, 'utf8'), renderConfigReference())],
  ];
  for (const [file, text] of wanted) {
    let current: string | undefined;
    try {
      current = readFileSync(file, 'utf8');
    } catch {
      current = undefined;
    }
    if (current === text) continue;
    stale.push(file);
    if (!check) writeFileSync(file, text);
  }
  return stale;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const check = process.argv.includes('--check');
  const stale = exportSchema(check);
  for (const f of stale) {
    process.stderr.write(
      check
        ? `${f} is stale: run \`npm run build && node dist/src/config/export-schema.js\`\n`
        : `wrote ${f}\n`,
    );
  }
  process.exitCode = check && stale.length > 0 ? 1 : 0;
}
