// The fixed set of operations a job document may name (issue 11): never a shell command. A job
// document is `{"operation": "<name>", ...params}`; each operation returns the job's
// statusDetails (names to strings of at most 1,024 characters, AWS's limit) or throws a
// JobFailure whose reason becomes the FAILED statusDetails. The daemon passes in the operations
// that live elsewhere (`rotate-certificate`, from the identity work) as `extra`.

import type { ReloadOutcome } from '../reload.js';
import { diagnosticsDetails } from './diagnostics.js';

export type Operation = (
  params: Record<string, unknown>,
  ctx: OperationContext,
) => Promise<Record<string, string>>;

export interface OperationContext {
  reload(): Promise<ReloadOutcome>;
  /** Sets the running log level (until the next reload or restart); returns the previous one. */
  setLogLevel(level: string): string;
  /**
   * Writes a new queue key (queue.rotatedKeysDir) and makes the running queue seal with it: its
   * key id and the first seq it seals.
   */
  rotateQueueKey(): Promise<{ keyId: string; fromSeq: number }>;
  /** A redacted status and doctor report: counts, states and codes, never values or secrets. */
  diagnostics(): Promise<Record<string, unknown>>;
}

/** The job ran and did not do what it was asked: FAILED, with this reason. */
export class JobFailure extends Error {}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** AWS: each statusDetails value at most 1,024 characters. */
export const DETAIL_MAX = 1024;

const BUILT_IN: Record<string, Operation> = {
  reload: async (_params, ctx) => {
    const r = await ctx.reload();
    if (!r.applied) throw new JobFailure(r.message);
    return { changed: String(r.changed.length), configHash: r.hash };
  },
  'set-log-level': (params, ctx) => {
    const level = params.level;
    if (typeof level !== 'string' || !(LOG_LEVELS as readonly string[]).includes(level)) {
      return Promise.reject(new JobFailure(`level must be one of ${LOG_LEVELS.join(', ')}`));
    }
    return Promise.resolve({ level, previous: ctx.setLogLevel(level) });
  },
  'rotate-queue-key': async (_params, ctx) => {
    // Sealing at once: older records keep opening with their own key until they drain.
    const { keyId, fromSeq } = await ctx.rotateQueueKey();
    return { keyId, sealsFromSeq: String(fromSeq) };
  },
  // Redacted, held to REPORT_MAX characters (visibly truncated) and split (diagnostics.ts).
  diagnostics: async (_params, ctx) => diagnosticsDetails(await ctx.diagnostics()),
};

/** The operations a job may name: the built-in ones and those the daemon passes in. */
export function operationRegistry(extra: Record<string, Operation> = {}): ReadonlyMap<string, Operation> {
  return new Map(Object.entries({ ...BUILT_IN, ...extra }));
}
