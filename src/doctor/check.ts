// The shape of one doctor line (`edgegw doctor`, issue 7): a check's name, its result, what was
// found and the command that fixes it. Lines hold paths, codes and figures, never a secret.

export type CheckResult = 'PASS' | 'WARN' | 'FAIL';

export interface CheckLine {
  /** Short stable name, e.g. `broker tcp`. */
  readonly check: string;
  readonly result: CheckResult;
  /** What was found (may span lines: a config error lists its FILE:LINE:COL lines). */
  readonly found: string;
  /** What to do about it (a command where there is one); empty for a PASS. */
  readonly fix: string;
}

export const pass = (check: string, found: string): CheckLine => ({ check, result: 'PASS', found, fix: '' });
export const warn = (check: string, found: string, fix: string): CheckLine => ({
  check,
  result: 'WARN',
  found,
  fix,
});
export const fail = (check: string, found: string, fix: string): CheckLine => ({
  check,
  result: 'FAIL',
  found,
  fix,
});

/** The error code of a Node system error (ENOENT, ECONNREFUSED, …), else its message. */
export function errCode(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string')
    return err.code;
  return err instanceof Error ? err.message : String(err);
}

/** Runs `fn`, or rejects with a timeout error (code ETIMEDOUT) after `ms`: every network step is bounded. */
export function withTimeout<T>(
  ms: number,
  what: string,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      ac.abort();
      reject(Object.assign(new Error(`${what}: no answer within ${ms} ms`), { code: 'ETIMEDOUT' }));
    }, ms);
  });
  return Promise.race([fn(ac.signal), timeout]).finally(() => clearTimeout(timer));
}

export const isoDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/** The code of a failed system call (ENOENT, EACCES), or `otherwise` (a parser's error, whose text could quote input). */
export function syscallCode(err: unknown, otherwise: string): string {
  const syscall = typeof err === 'object' && err !== null && 'syscall' in err;
  return syscall ? errCode(err) : otherwise;
}

/** 1.5 GiB, 200.0 MiB, 12 KiB: for people, not for config values. */
export function humanSize(bytes: number): string {
  for (const [unit, factor] of [
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ] as const) {
    if (bytes >= factor) return `${(bytes / factor).toFixed(1)} ${unit}`;
  }
  return `${bytes} B`;
}
