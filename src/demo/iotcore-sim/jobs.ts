// A SIMULATOR of a remote AWS service: the AWS IoT Jobs device MQTT API, on the test broker's aedes
// (IoT Core cannot be reached from the test machines). Written from AWS's developer guide ("Jobs
// device MQTT API operations", "Job document", "Jobs limits"): executions per thing, QUEUED →
// IN_PROGRESS → SUCCEEDED / FAILED / REJECTED; `jobs/notify-next` ({timestamp, execution?}) when
// the next pending execution changes; `jobs/start-next` (the next pending one, IN_PROGRESS first,
// else the oldest QUEUED, set IN_PROGRESS) and `jobs/$next/get`, answered with {execution?,
// timestamp, clientToken}; `jobs/<jobId>/update` ({status, statusDetails, expectedVersion}) answered
// with {executionState: {status, statusDetails, versionNumber}, timestamp, clientToken}; rejections
// {code: InvalidRequest | InvalidStateTransition | ResourceNotFound | VersionMismatch, message,
// timestamp, clientToken}; statusDetails values ≤ 1,024 characters, job documents ≤ 32,768.
// Not simulated: `jobs/notify` (list changes), jobs/get lists, step and in-progress timeouts,
// rollouts and abort configs, thing groups, the TerminalStateReached and Throttling codes.

import type { Aedes, AedesPublishPacket } from 'aedes';

export type ExecutionStatus = 'QUEUED' | 'IN_PROGRESS' | 'SUCCEEDED' | 'FAILED' | 'REJECTED';

export interface Execution {
  jobId: string;
  thingName: string;
  status: ExecutionStatus;
  jobDocument: Record<string, unknown>;
  statusDetails: Record<string, string>;
  queuedAt: number;
  startedAt?: number;
  lastUpdatedAt: number;
  versionNumber: number;
  executionNumber: number;
  /** Every status the device set, in order (a test reads the history). */
  history: ExecutionStatus[];
}

const TOPIC = /^\$aws\/things\/([^/]+)\/jobs\/(start-next|\$next\/get|([^/]+)\/update)$/;
const TERMINAL: readonly ExecutionStatus[] = ['SUCCEEDED', 'FAILED', 'REJECTED'];

export class JobsService {
  private readonly executions: Execution[] = [];
  private n = 0;
  private readonly listener = (packet: AedesPublishPacket, client: unknown): void => {
    if (client === null || client === undefined) return;
    const m = TOPIC.exec(packet.topic);
    if (m === null) return;
    let body: Record<string, unknown> = {};
    try {
      const p = Buffer.from(packet.payload).toString('utf8');
      body = p === '' ? {} : (JSON.parse(p) as Record<string, unknown>);
    } catch {
      return this.send(`${packet.topic}/rejected`, this.rejection('InvalidRequest', 'bad JSON', undefined));
    }
    const token = typeof body.clientToken === 'string' ? body.clientToken : undefined;
    const thing = m[1]!;
    if (m[2] === 'start-next') return this.startNext(packet.topic, thing, body, token);
    if (m[2] === '$next/get') {
      const e = this.next(thing);
      return this.send(`${packet.topic}/accepted`, {
        ...(e ? { execution: view(e) } : {}),
        timestamp: now(),
        clientToken: token,
      });
    }
    this.update(packet.topic, thing, m[3]!, body, token);
  };

  constructor(private readonly aedes: Aedes) {
    aedes.on('publish', this.listener);
  }

  close(): void {
    this.aedes.removeListener('publish', this.listener);
  }

  /** A job targets `thing` (as CreateJob would): queued, notify-next when it is the next. */
  createJob(thing: string, jobId: string, document: Record<string, unknown>): void {
    if (JSON.stringify(document).length > 32_768) throw new Error('job document over 32,768 characters');
    const t = now();
    const before = this.next(thing);
    this.executions.push({
      jobId,
      thingName: thing,
      status: 'QUEUED',
      jobDocument: document,
      statusDetails: {},
      queuedAt: t,
      lastUpdatedAt: t,
      versionNumber: 1,
      executionNumber: ++this.n,
      history: ['QUEUED'],
    });
    if (before === undefined) this.notifyNext(thing);
  }

  execution(thing: string, jobId: string): Execution | undefined {
    const e = this.executions.find((x) => x.thingName === thing && x.jobId === jobId);
    return e === undefined ? undefined : structuredClone(e);
  }

  private next(thing: string): Execution | undefined {
    const mine = this.executions.filter((e) => e.thingName === thing);
    return mine.find((e) => e.status === 'IN_PROGRESS') ?? mine.find((e) => e.status === 'QUEUED');
  }

  private startNext(
    topic: string,
    thing: string,
    body: Record<string, unknown>,
    token: string | undefined,
  ): void {
    const e = this.next(thing);
    if (e !== undefined && e.status === 'QUEUED') {
      e.status = 'IN_PROGRESS';
      e.history.push('IN_PROGRESS');
      e.startedAt = now();
      e.lastUpdatedAt = e.startedAt;
      e.versionNumber += 1;
      if (isDetails(body.statusDetails)) e.statusDetails = { ...body.statusDetails };
    }
    this.send(`${topic}/accepted`, {
      ...(e ? { execution: view(e) } : {}),
      timestamp: now(),
      clientToken: token,
    });
  }

  private update(
    topic: string,
    thing: string,
    jobId: string,
    body: Record<string, unknown>,
    token: string | undefined,
  ): void {
    const e = this.executions.find((x) => x.thingName === thing && x.jobId === jobId);
    const reject = (code: string, message: string) =>
      this.send(`${topic}/rejected`, this.rejection(code, message, token));
    if (e === undefined) return reject('ResourceNotFound', `no execution of job ${jobId} for ${thing}`);
    const status = body.status as ExecutionStatus;
    if (!['IN_PROGRESS', ...TERMINAL].includes(status))
      return reject('InvalidRequest', 'status must be IN_PROGRESS, SUCCEEDED, FAILED or REJECTED');
    if (body.statusDetails !== undefined && !isDetails(body.statusDetails)) {
      return reject('InvalidRequest', 'statusDetails must map names to strings of at most 1024 characters');
    }
    if (typeof body.expectedVersion === 'number' && body.expectedVersion !== e.versionNumber) {
      return reject('VersionMismatch', 'the expected version does not match the current version');
    }
    if (TERMINAL.includes(e.status))
      return reject('InvalidStateTransition', `the execution is already ${e.status}`);
    e.status = status;
    e.history.push(status);
    if (isDetails(body.statusDetails)) e.statusDetails = { ...e.statusDetails, ...body.statusDetails };
    e.versionNumber += 1;
    e.lastUpdatedAt = now();
    this.send(`${topic}/accepted`, {
      executionState: { status: e.status, statusDetails: e.statusDetails, versionNumber: e.versionNumber },
      timestamp: now(),
      clientToken: token,
    });
    if (TERMINAL.includes(status)) this.notifyNext(thing);
  }

  private notifyNext(thing: string): void {
    const e = this.next(thing);
    this.send(`$aws/things/${thing}/jobs/notify-next`, {
      timestamp: now(),
      ...(e ? { execution: view(e) } : {}),
    });
  }

  private rejection(code: string, message: string, clientToken: string | undefined): Record<string, unknown> {
    return { code, message, timestamp: now(), ...(clientToken === undefined ? {} : { clientToken }) };
  }

  private send(topic: string, body: unknown): void {
    const payload = Buffer.from(JSON.stringify(body));
    this.aedes.publish(
      { cmd: 'publish', topic, payload, qos: 1, dup: false, retain: false },
      () => undefined,
    );
  }
}

function view(e: Execution): Record<string, unknown> {
  const { history: _history, ...rest } = e;
  return structuredClone(rest);
}

function isDetails(v: unknown): v is Record<string, string> {
  return (
    typeof v === 'object' &&
    v !== null &&
    !Array.isArray(v) &&
    Object.values(v).every((x) => typeof x === 'string' && x.length <= 1024)
  );
}

function now(): number {
  return Math.floor(Date.now() / 1000);
}
