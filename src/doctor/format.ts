// Text output of `edgegw doctor`: one line per check, `RESULT  check: found`, and for anything
// but a PASS an indented `fix:` line. Extra lines of a finding (config errors) are indented.

import type { CheckLine } from './check.js';

export function formatDoctor(lines: readonly CheckLine[]): string {
  const out: string[] = [];
  for (const l of lines) {
    const [first = '', ...rest] = l.found.split('\n');
    out.push(`${l.result}  ${l.check}: ${first}`);
    for (const r of rest) out.push(`        ${r}`);
    if (l.result !== 'PASS' && l.fix !== '') out.push(`      fix: ${l.fix}`);
  }
  const count = (r: CheckLine['result']) => lines.filter((l) => l.result === r).length;
  out.push(`${count('PASS')} passed, ${count('WARN')} warnings, ${count('FAIL')} failed`);
  return `${out.join('\n')}\n`;
}
