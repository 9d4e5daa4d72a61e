// Configuration problems, each pinned to FILE:LINE:COL of the YAML node it is about.

import { isMap, isPair, isScalar, isSeq, type Document, type LineCounter } from 'yaml';
import { EdgegwError, Exit } from '../errors.js';
import { looksLikeKeyMaterial } from './secrets.js';

export type KeyPath = readonly (string | number)[];

export interface ConfigIssue {
  readonly file: string;
  /** 1-based. */
  readonly line: number;
  /** 1-based. */
  readonly col: number;
  /** Dotted key path, array items as `[i]`: `sensors[2].address`. */
  readonly path: string;
  readonly message: string;
  readonly severity: 'error' | 'warning';
}

export function formatIssue(i: ConfigIssue): string {
  const sev = i.severity === 'warning' ? 'warning: ' : '';
  return `${i.file}:${i.line}:${i.col}: ${i.path}: ${sev}${i.message}`;
}

/** The site configuration is invalid: every problem found, at once (exit 78). */
export class ConfigError extends EdgegwError {
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    super('EDGEGW_E_CONFIG', issues.map(formatIssue).join('\n'), Exit.CONFIG);
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

export function formatPath(path: KeyPath): string {
  let out = '';
  for (const seg of path) {
    out += typeof seg === 'number' ? `[${seg}]` : out === '' ? name(seg) : `.${name(seg)}`;
  }
  return out === '' ? '(root)' : out;
}

/** A key as written, unless it is key material pasted as a key (never repeated) or very long. */
function name(seg: string): string {
  if (looksLikeKeyMaterial(seg)) return '<key material>';
  return seg.length > 64 ? `${seg.slice(0, 61)}…` : seg;
}

interface Located {
  /** Offset of the value node (or its nearest ancestor that has a source range). */
  value: number;
  /** Offset of the key of the last segment, when the path ends at a mapping key in the source. */
  key: number | undefined;
}

/** Where `at` points: the value node, its key, or (for a missing key) the parent mapping. */
export type Anchor = 'value' | 'key' | 'parent';

/** Collects issues and finds their source positions in a parsed YAML document. */
export class IssueList {
  readonly errors: ConfigIssue[] = [];
  readonly warnings: ConfigIssue[] = [];

  constructor(
    readonly file: string,
    private readonly doc: Document | null,
    private readonly lines: LineCounter,
  ) {}

  error(path: KeyPath, message: string, at: Anchor = 'value'): void {
    this.errors.push(this.make(path, message, at, 'error'));
  }

  warn(path: KeyPath, message: string, at: Anchor = 'value'): void {
    this.warnings.push(this.make(path, message, at, 'warning'));
  }

  /** An issue at a raw source offset (YAML syntax errors). */
  errorAtOffset(offset: number, path: string, message: string): void {
    const { line, col } = this.lines.linePos(offset);
    this.errors.push({ file: this.file, line, col, path, message, severity: 'error' });
  }

  /** True when a node exists at this path in the source (i.e. the user wrote the key). */
  written(path: KeyPath): boolean {
    return this.doc?.hasIn(path) ?? false;
  }

  private make(path: KeyPath, message: string, at: Anchor, severity: ConfigIssue['severity']): ConfigIssue {
    const target = at === 'parent' ? path.slice(0, -1) : path;
    const loc = this.locate(target);
    const offset = at === 'key' ? (loc.key ?? loc.value) : loc.value;
    const { line, col } = this.lines.linePos(offset);
    return { file: this.file, line, col, path: formatPath(path), message, severity };
  }

  private locate(path: KeyPath): Located {
    let node: unknown = this.doc?.contents;
    let value = rangeStart(node) ?? 0;
    let key: number | undefined;
    for (const seg of path) {
      key = undefined;
      let next: unknown;
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && keyText(p.key) === String(seg));
        key = rangeStart(pair?.key);
        next = pair?.value;
      } else if (isSeq(node) && typeof seg === 'number') {
        next = node.items[seg];
      }
      const start = rangeStart(next) ?? key;
      if (start === undefined) return { value, key };
      value = start;
      node = next;
    }
    return { value, key };
  }
}

function keyText(k: unknown): string | undefined {
  if (isScalar(k)) return String(k.value);
  return typeof k === 'string' ? k : undefined;
}

function rangeStart(n: unknown): number | undefined {
  if (n !== null && typeof n === 'object' && 'range' in n) {
    const r = (n as { range?: readonly number[] | null }).range;
    return r?.[0];
  }
  return undefined;
}
