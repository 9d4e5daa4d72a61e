// The benchmark's table: one row per figure, with its target and verdict.

export interface Row {
  section: string;
  figure: string;
  value: string;
  target: string;
  verdict: string;
}

/** The machine a run was taken on (BENCHMARKS.md says it beside the table). */
export interface Machine {
  date: string;
  cpu: string;
  memory: string;
  node: string;
  disk: string;
}

export class Report {
  readonly rows: Row[] = [];

  /** A figure with no target of its own (context for the ones that have one). */
  info(section: string, figure: string, value: string): void {
    this.rows.push({ section, figure, value, target: '', verdict: '' });
  }

  check(section: string, figure: string, value: string, target: string, pass: boolean): void {
    this.rows.push({ section, figure, value, target, verdict: pass ? 'PASS' : 'FAIL' });
  }

  /** A plain-text table, also valid as a Markdown table. */
  render(): string {
    const head: Row = {
      section: 'section',
      figure: 'figure',
      value: 'value',
      target: 'target',
      verdict: 'result',
    };
    const cols = ['section', 'figure', 'value', 'target', 'verdict'] as const;
    const width = cols.map((c) => Math.max(...[head, ...this.rows].map((r) => r[c].length)));
    const line = (r: Row): string => `| ${cols.map((c, i) => r[c].padEnd(width[i]!)).join(' | ')} |`;
    const rule = `|${width.map((w) => '-'.repeat(w + 2)).join('|')}|`;
    return [line(head), rule, ...this.rows.map(line)].join('\n');
  }
}

export const fmt = {
  int: (n: number): string => Math.round(n).toLocaleString('en-US'),
  num: (n: number, digits = 1): string => n.toFixed(digits),
  us: (n: number): string => `${n.toFixed(3)} µs`,
  mib: (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`,
  kib: (bytes: number): string => `${(bytes / 1024).toFixed(1)} KiB`,
  pct: (x: number): string => `${(x * 100).toFixed(1)}%`,
  ms: (n: number): string => `${Math.round(n).toLocaleString('en-US')} ms`,
};
