// Remote actions through AWS IoT Jobs (issue 11): the runner follows notify-next, takes the next
// job with start-next, runs its one operation from the fixed registry and reports IN_PROGRESS, then
// SUCCEEDED, FAILED or REJECTED (an unknown operation) with statusDetails. One job at a time.
// Before an operation runs, the job's id is stored in gateway.dataDir/fleet-job.json; a start-next
// that hands back that same job means the daemon died while it ran: it is reported FAILED (never
// run twice, never forgotten), and the operator may queue it again. A job that cannot be recorded
// there (a full or read-only disk) is not run: it is reported FAILED with the reason. The record
// goes only once the Jobs service has accepted the final update (…/update/accepted); a rejected or
// unanswered update is sent again a bounded number of times, then again after a pause, never by
// running the job again. A throttled start-next is asked again with backoff.

import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { audit } from '../audit.js';
import { writeFileDurably } from '../durable-file.js';
import type { Clock } from '../types.js';
import type { Control } from '../uplink/control.js';
import { DETAIL_MAX, JobFailure, type Operation, type OperationContext } from './operations.js';

export interface JobRunnerOptions {
  control: Control;
  thing: string;
  dataDir: string;
  log: Logger;
  clock: Clock;
  operations: ReadonlyMap<string, Operation>;
  context: OperationContext;
}

/** `edgegw status` → fleet.jobs. */
export interface JobsStatus {
  current: { jobId: string; operation: string } | null;
  last: { jobId: string; operation: string; status: string } | null;
  lastError: string | null;
}

interface Execution {
  jobId: string;
  jobDocument?: Record<string, unknown>;
  status?: string;
}

/** gateway.dataDir/fleet-job.json: the job being run, and its outcome once known. */
interface JobMark {
  jobId: string;
  result?: { status: string; details: Record<string, string> };
}

/** The Jobs service's answer to an update; `sent: false` when it could not be published. */
type UpdateReply =
  | { sent: false }
  | { sent: true; accepted: true }
  | { sent: true; accepted: false; code: string; message: string };

export const JOB_FILE = 'fleet-job.json';
/** How long an update waits for …/update/accepted or …/rejected before it counts as unanswered. */
export const REPLY_WAIT_MS = 15_000;
/** Attempts at a final update before the runner pauses (RETRY_MAX_MS) and asks start-next again. */
export const UPDATE_ATTEMPTS = 3;
export const RETRY_MIN_MS = 1000;
export const RETRY_MAX_MS = 60_000;
/** Rejection codes after which the same request may pass later (AWS: throttled, or its own fault). */
const PASSING = new Set(['RequestThrottled', 'ThrottlingException', 'InternalError']);
/** The execution is over or gone at the service: nothing more to report, nothing to run. */
const ENDED = new Set(['InvalidStateTransition', 'TerminalStateReached', 'ResourceNotFound']);
/** AWS: statusDetails keys are 1-128 of [a-zA-Z0-9:_-]; values 1-1,024 characters, no control ones. */
const DETAIL_KEY = /^[a-zA-Z0-9:_-]{1,128}$/;

export class JobRunner {
  private readonly prefix: string;
  private readonly token = `edgegw-${randomBytes(4).toString('hex')}`;
  private requests = 0;
  /** Updates waiting for their reply, by clientToken. */
  private readonly pending = new Map<string, (reply: UpdateReply) => void>();
  private busy = false;
  private current: JobsStatus['current'] = null;
  private last: JobsStatus['last'] = null;
  private lastError: string | null = null;
  private removers: (() => void)[] = [];
  private stopped = false;
  private running: Promise<void> = Promise.resolve();
  private retryMs = 0;
  private retryTimer: unknown = null;
  /**
   * The last job's final update did not pass, or the service refused to start it: the next
   * start-next waits (backoff) instead of asking at once, so a service that keeps refusing is not
   * asked in a loop.
   */
  private holdNext = false;
  /** The outcome of the last job run until the service accepted it (its file record may be missing). */
  private unsent: JobMark | null = null;
  /** Ends the pause between two attempts at an update (stop). */
  private wake: (() => void) | null = null;

  constructor(private readonly opts: JobRunnerOptions) {
    this.prefix = `$aws/things/${opts.thing}/jobs`;
  }

  async start(): Promise<void> {
    const p = this.prefix;
    this.removers.push(
      this.opts.control.onMessage((topic, payload) => this.message(topic, payload)),
      this.opts.control.onUp(() => this.startNext()),
    );
    await this.opts.control.subscribe([
      `${p}/notify-next`,
      `${p}/start-next/accepted`,
      `${p}/start-next/rejected`,
      `${p}/+/update/accepted`,
      `${p}/+/update/rejected`,
    ]);
    if (this.opts.control.connected) this.startNext();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const r of this.removers.splice(0)) r();
    if (this.retryTimer !== null) this.opts.clock.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    for (const settle of [...this.pending.values()]) settle({ sent: false });
    this.wake?.();
    await this.running;
  }

  status(): JobsStatus {
    return { current: this.current, last: this.last, lastError: this.lastError };
  }

  private startNext(): void {
    if (this.stopped || this.busy || this.retryTimer !== null) return;
    this.opts.control
      .publish(`${this.prefix}/start-next`, JSON.stringify({ clientToken: this.token }))
      .catch((err: unknown) => this.fail(`start-next not sent (${(err as Error).message})`));
  }

  /** start-next again after a pause that doubles up to RETRY_MAX_MS (a quarter of it random). */
  private startNextLater(): void {
    if (this.stopped || this.retryTimer !== null) return;
    this.retryMs = Math.min(RETRY_MAX_MS, Math.max(RETRY_MIN_MS, this.retryMs * 2));
    const wait = Math.round(this.retryMs * (0.75 + Math.random() / 4));
    this.retryTimer = this.opts.clock.setTimeout(() => {
      this.retryTimer = null;
      this.startNext();
    }, wait);
  }

  private message(topic: string, payload: Buffer): void {
    if (!topic.startsWith(`${this.prefix}/`)) return;
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
    } catch {
      return this.fail('a jobs reply that is not JSON');
    }
    const what = topic.slice(this.prefix.length + 1);
    if (what === 'notify-next') {
      if (body.execution !== undefined) this.startNext();
    } else if (what === 'start-next/accepted' && body.clientToken === this.token) {
      if (!this.holdNext) this.retryMs = 0;
      const e = body.execution as Execution | undefined;
      if (e !== undefined && typeof e.jobId === 'string' && !this.busy) {
        this.busy = true;
        this.running = this.run(e)
          .catch((err: unknown) => this.fail(`job ${e.jobId}: ${(err as Error).message}`))
          .finally(() => {
            this.busy = false;
            this.current = null;
            if (this.holdNext) this.startNextLater();
            else this.startNext();
          });
      }
    } else if (what === 'start-next/rejected' && body.clientToken === this.token) {
      this.fail(`start-next rejected: ${String(body.code)} ${String(body.message)}`);
      if (PASSING.has(String(body.code))) this.startNextLater();
    } else if (what.endsWith('/update/accepted') || what.endsWith('/update/rejected')) {
      const settle = typeof body.clientToken === 'string' ? this.pending.get(body.clientToken) : undefined;
      if (settle === undefined) return;
      settle(
        what.endsWith('/accepted')
          ? { sent: true, accepted: true }
          : { sent: true, accepted: false, code: String(body.code), message: String(body.message) },
      );
    }
  }

  private async run(e: Execution): Promise<void> {
    this.holdNext = false;
    const doc = e.jobDocument ?? {};
    const name = typeof doc.operation === 'string' ? doc.operation : '';
    const op = this.opts.operations.get(name);
    // An outcome not sent yet: from memory first (its record may have failed to write), else the file.
    const unsent = this.unsent?.jobId === e.jobId ? this.unsent : null;
    const marked = unsent ?? (await this.marked());
    if (marked?.jobId === e.jobId) {
      // It ran to the end but its update never passed (the link went down, or it was rejected):
      // send that, not a new run.
      if (marked.result !== undefined)
        return this.finish(e.jobId, name, marked.result.status, marked.result.details);
      return this.finish(e.jobId, name, 'FAILED', {
        reason: 'the daemon stopped while this job ran (a crash or a restart); queue the job again to retry',
      });
    }
    if (op === undefined) {
      const known = [...this.opts.operations.keys()].join(', ');
      return this.finish(e.jobId, name, 'REJECTED', {
        reason: `unknown operation ${JSON.stringify(name.slice(0, 64))}; one of: ${known}`,
      });
    }
    this.current = { jobId: e.jobId, operation: name };
    try {
      await this.mark(e.jobId);
    } catch (err) {
      // Unrecorded, a crash while it ran would run it again after the restart: it is not run.
      return this.finish(e.jobId, name, 'FAILED', {
        operation: name,
        reason: `cannot record the job in ${this.opts.dataDir}: ${errno(err)}; it was not run (free space or fix the folder, then queue it again)`,
      });
    }
    const started = await this.update(e.jobId, 'IN_PROGRESS', { operation: name });
    if (started.sent && !started.accepted && ENDED.has(started.code)) {
      // Cancelled or removed in the meantime: not run.
      this.fail(`job ${e.jobId} is no longer in progress at the service (${started.code}); not run`);
      this.holdNext = true;
      return this.unmark();
    }
    if (started.sent && !started.accepted)
      this.fail(`the IN_PROGRESS update of job ${e.jobId}: ${started.code} ${started.message}; it runs`);
    if (this.stopped) return this.unmark(); // never ran: the next start takes it again
    const { operation: _op, ...params } = doc;
    let details: Record<string, string>;
    try {
      details = await op(params, this.opts.context);
    } catch (err) {
      const reason =
        err instanceof JobFailure ? err.message : `the operation failed (${(err as Error).message})`;
      return this.finish(e.jobId, name, 'FAILED', { operation: name, reason });
    }
    return this.finish(e.jobId, name, 'SUCCEEDED', { operation: name, ...details });
  }

  private async finish(
    jobId: string,
    operation: string,
    status: string,
    details: Record<string, string>,
  ): Promise<void> {
    // The outcome is stored first: a daemon that dies before the update passed sends it on restart.
    // It is kept in memory too, so a record that could not be written (a full disk) does not turn
    // a job that ran into one "stopped while it ran" at the next start-next.
    this.unsent = { jobId, result: { status, details } };
    try {
      await this.mark(jobId, { status, details });
    } catch (err) {
      this.fail(`the outcome of job ${jobId} cannot be recorded in ${this.opts.dataDir} (${errno(err)})`);
    }
    this.holdNext = !(await this.report(jobId, status, details));
    if (!this.holdNext) {
      this.unsent = null;
      await this.unmark();
    }
    this.last = { jobId, operation, status };
    audit(
      this.opts.log,
      'job',
      { jobId, operation: operation.slice(0, 64), status, reason: details.reason ?? null },
      `job ${status.toLowerCase()}`,
      status === 'SUCCEEDED' ? 'info' : 'warn',
    );
  }

  /** Sends the final update until the service accepts it (or says the job is over): whether it did. */
  private async report(jobId: string, status: string, details: Record<string, string>): Promise<boolean> {
    let d = details;
    for (let attempt = 1; attempt <= UPDATE_ATTEMPTS; attempt++) {
      const r = await this.update(jobId, status, d);
      if (!r.sent) return false; // sent again after the next start-next (the link is back)
      if (r.accepted) return true;
      if (ENDED.has(r.code)) {
        this.fail(`the ${status} update of job ${jobId}: the job is over at the service (${r.code})`);
        return true;
      }
      const last = attempt === UPDATE_ATTEMPTS;
      this.fail(
        `the ${status} update of job ${jobId} was rejected: ${r.code} ${r.message}` +
          (last ? `; sent again in up to ${RETRY_MAX_MS / 1000} s` : '; sent again'),
      );
      if (last || this.stopped) return false;
      // Refused details (InvalidRequest) go as a short, plain reason; other codes wait and retry.
      if (r.code === 'InvalidRequest') {
        d = {
          ...(d.operation === undefined ? {} : { operation: d.operation }),
          detailsRefused: `${r.code}: ${r.message}`,
        };
      } else {
        await this.pause(RETRY_MIN_MS * 2 ** (attempt - 1));
      }
    }
    return false;
  }

  /** Waits `ms`, or until stop(). */
  private pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = this.opts.clock.setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        this.opts.clock.clearTimeout(timer);
        this.wake = null;
        resolve();
      };
    });
  }

  /** Publishes an update and waits for its reply (an unanswered one counts as a passing rejection). */
  private async update(jobId: string, status: string, details: Record<string, string>): Promise<UpdateReply> {
    const clientToken = `${this.token}-${++this.requests}`;
    const reply = new Promise<UpdateReply>((resolve) => {
      const timer = this.opts.clock.setTimeout(
        () =>
          settle({
            sent: true,
            accepted: false,
            code: 'NoReply',
            message: `none within ${REPLY_WAIT_MS / 1000} s`,
          }),
        REPLY_WAIT_MS,
      );
      const settle = (r: UpdateReply): void => {
        this.opts.clock.clearTimeout(timer);
        this.pending.delete(clientToken);
        resolve(r);
      };
      this.pending.set(clientToken, settle);
    });
    try {
      await this.opts.control.publish(
        `${this.prefix}/${jobId}/update`,
        JSON.stringify({ status, statusDetails: statusDetails(details), clientToken }),
      );
    } catch (err) {
      this.pending.get(clientToken)?.({ sent: false });
      this.fail(`the ${status} update of job ${jobId} was not sent (${(err as Error).message})`);
    }
    return reply;
  }

  private async mark(jobId: string, result?: JobMark['result']): Promise<void> {
    const file = join(this.opts.dataDir, JOB_FILE);
    await writeFileDurably(file, `${file}.tmp`, JSON.stringify({ jobId, ...(result ? { result } : {}) }));
  }

  private async unmark(): Promise<void> {
    try {
      await rm(join(this.opts.dataDir, JOB_FILE), { force: true });
    } catch (err) {
      this.fail(`the job record ${JOB_FILE} cannot be removed (${errno(err)})`);
    }
  }

  private async marked(): Promise<JobMark | null> {
    try {
      const v = JSON.parse(await readFile(join(this.opts.dataDir, JOB_FILE), 'utf8')) as JobMark;
      return typeof v.jobId === 'string' ? v : null;
    } catch {
      return null;
    }
  }

  private fail(why: string): void {
    this.lastError = why;
    this.opts.log.warn({ code: 'EDGEGW_E_FLEET_JOB' }, `jobs: ${why}`);
  }
}

/** statusDetails as AWS takes them: valid keys only; values cut, control characters made spaces, never empty. */
export function statusDetails(details: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(details)) {
    if (!DETAIL_KEY.test(k)) continue;
    const clean = v.slice(0, DETAIL_MAX).replace(/\p{C}/gu, ' ');
    out[k] = clean === '' ? '-' : clean;
  }
  return out;
}

function errno(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
}
