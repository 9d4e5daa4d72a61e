// Remote actions through AWS IoT Jobs (issue 11): the runner follows notify-next, takes the next
// job with start-next, runs its one operation from the fixed registry and reports IN_PROGRESS, then
// SUCCEEDED, FAILED or REJECTED (an unknown operation) with statusDetails. One job at a time.
// Before an operation runs, the job's id is stored in gateway.dataDir/fleet-job.json; a start-next
// that hands back that same job means the daemon died while it ran: it is reported FAILED (never
// run twice, never forgotten), and the operator may queue it again.

import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { audit } from '../audit.js';
import { writeFileDurably } from '../durable-file.js';
import type { Control } from '../uplink/control.js';
import { DETAIL_MAX, JobFailure, type Operation, type OperationContext } from './operations.js';

export interface JobRunnerOptions {
  control: Control;
  thing: string;
  dataDir: string;
  log: Logger;
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

export const JOB_FILE = 'fleet-job.json';

export class JobRunner {
  private readonly prefix: string;
  private readonly token = `edgegw-${randomBytes(4).toString('hex')}`;
  private busy = false;
  private current: JobsStatus['current'] = null;
  private last: JobsStatus['last'] = null;
  private lastError: string | null = null;
  private removers: (() => void)[] = [];
  private stopped = false;
  private running: Promise<void> = Promise.resolve();

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
    await this.running;
  }

  status(): JobsStatus {
    return { current: this.current, last: this.last, lastError: this.lastError };
  }

  private startNext(): void {
    if (this.stopped || this.busy) return;
    this.opts.control
      .publish(`${this.prefix}/start-next`, JSON.stringify({ clientToken: this.token }))
      .catch((err: unknown) => this.fail(`start-next not sent (${(err as Error).message})`));
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
      const e = body.execution as Execution | undefined;
      if (e !== undefined && typeof e.jobId === 'string' && !this.busy) {
        this.busy = true;
        this.running = this.run(e).finally(() => {
          this.busy = false;
          this.current = null;
          this.startNext();
        });
      }
    } else if (what.endsWith('/rejected') && body.clientToken === this.token) {
      this.fail(`${what}: ${String(body.code)} ${String(body.message)}`);
    }
  }

  private async run(e: Execution): Promise<void> {
    const doc = e.jobDocument ?? {};
    const name = typeof doc.operation === 'string' ? doc.operation : '';
    const op = this.opts.operations.get(name);
    const marked = await this.marked();
    if (marked?.jobId === e.jobId) {
      // It ran to the end but its update never left (the link went down): send that, not a new run.
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
    await this.mark(e.jobId);
    await this.update(e.jobId, 'IN_PROGRESS', { operation: name });
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
    // The outcome is stored first: a daemon that dies before the update left sends it on restart.
    await this.mark(jobId, { status, details });
    if (await this.update(jobId, status, details))
      await rm(join(this.opts.dataDir, JOB_FILE), { force: true });
    this.last = { jobId, operation, status };
    audit(
      this.opts.log,
      'job',
      { jobId, operation: operation.slice(0, 64), status, reason: details.reason ?? null },
      `job ${status.toLowerCase()}`,
      status === 'SUCCEEDED' ? 'info' : 'warn',
    );
  }

  private async update(jobId: string, status: string, details: Record<string, string>): Promise<boolean> {
    const statusDetails = Object.fromEntries(
      Object.entries(details).map(([k, v]) => [k, v.slice(0, DETAIL_MAX)]),
    );
    try {
      await this.opts.control.publish(
        `${this.prefix}/${jobId}/update`,
        JSON.stringify({ status, statusDetails, clientToken: this.token }),
      );
      return true;
    } catch (err) {
      this.fail(`the ${status} update of job ${jobId} was not sent (${(err as Error).message})`);
      return false;
    }
  }

  private async mark(jobId: string, result?: JobMark['result']): Promise<void> {
    const file = join(this.opts.dataDir, JOB_FILE);
    await writeFileDurably(file, `${file}.tmp`, JSON.stringify({ jobId, ...(result ? { result } : {}) }));
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
