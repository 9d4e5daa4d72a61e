// A SIMULATOR of a remote AWS service: the AWS IoT Jobs device MQTT API, on the test broker's aedes
// (IoT Core cannot be reached from the test machines). Written from AWS's developer guide ("Jobs
// device MQTT API operations", "Job document", "Jobs limits") and API reference (JobExecutionState):
// executions per thing, QUEUED → IN_PROGRESS → SUCCEEDED / FAILED / REJECTED; `jobs/notify-next`
// ({timestamp, execution?}) when the next pending execution changes; `jobs/start-next` (the next
// pending one, IN_PROGRESS first, else the oldest QUEUED, set IN_PROGRESS) and `jobs/$next/get`,
// answered with {execution?, timestamp, clientToken}; `jobs/<jobId>/update` ({status,
// statusDetails, expectedVersion}) answered with {executionState: {status, statusDetails,
// versionNumber}, timestamp, clientToken}; rejections (ErrorResponse) {code: InvalidRequest |
// InvalidStateTransition | ResourceNotFound | VersionMismatch | <injected>, message, timestamp,
// clientToken}; statusDetails (start-next and update) map keys of 1-128 characters of
// [a-zA-Z0-9:_-] to strings of 1-1,024 characters with no control character (pattern [^\p{C}]+),
// else InvalidRequest; job documents ≤ 32,768 characters. `failNext` injects a rejection (a
// throttled start-next, a refused update) the way the shadow simulator's does.
// Not simulated: `jobs/notify` (list changes), jobs/get lists, step and in-progress timeouts,
// rollouts and abort configs, thing groups, TerminalStateReached, the account's real request rates.

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
/** JobExecutionState.statusDetails (AWS API reference). */
const DETAIL_KEY = /^[a-zA-Z0-9:_-]{1,128}$/;
const DETAIL_VALUE_MAX = 1024;

/** Which requests an injected rejection hits: start-next, any update, or only a final one. */
export type FailedRequest = 'start-next' | 'update' | 'final-update';

export class JobsService {
  /** Every request a device sent, in order (a test reads them). */
  readonly requests: { topic: string; body: Record<string, unknown> }[] = [];
  private readonly executions: Execution[] = [];
  private readonly failures: { request: FailedRequest; code: string; message: string }[] = [];
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
    this.requests.push({ topic: packet.topic, body });
    const token = typeof body.clientToken === 'string' ? body.clientToken : undefined;
    const thing = m[1]!;
    const failure = this.injected(m[2] === 'start-next' ? 'start-next' : m[3] === undefined ? null : body);
    if (failure !== undefined) {
      return this.send(`${packet.topic}/rejected`, this.rejection(failure.code, failure.message, token));
    }
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

  /**
   * The next request of that kind is rejected with `code` (e.g. RequestThrottled for a throttled
   * start-next), `times` times; the injected rejections are used in order.
   */
  failNext(request: FailedRequest, code: string, message: string, times = 1): void {
    for (let i = 0; i < times; i++) this.failures.push({ request, code, message });
  }

  execution(thing: string, jobId: string): Execution | undefined {
    const e = this.executions.find((x) => x.thingName === thing && x.jobId === jobId);
    return e === undefined ? undefined : structuredClone(e);
  }

  /** The first injected rejection for this request (`body`: an update's; null: a $next/get), taken. */
  private injected(req: 'start-next' | Record<string, unknown> | null) {
    if (req === null) return undefined;
    const final = req !== 'start-next' && TERMINAL.includes(req.status as ExecutionStatus);
    const i = this.failures.findIndex((f) =>
      req === 'start-next'
        ? f.request === 'start-next'
        : f.request === 'update' || (f.request === 'final-update' && final),
    );
    return i < 0 ? undefined : this.failures.splice(i, 1)[0];
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
    const invalid = detailsError(body.statusDetails);
    if (invalid !== null) {
      return this.send(`${topic}/rejected`, this.rejection('InvalidRequest', invalid, token));
    }
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
    const invalid = detailsError(body.statusDetails);
    if (invalid !== null) return reject('InvalidRequest', invalid);
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
  return v !== undefined && detailsError(v) === null;
}

/** Why statusDetails break AWS's rules (absent ones are fine), or null. */
function detailsError(v: unknown): string | null {
  if (v === undefined) return null;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'statusDetails must be an object';
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (!DETAIL_KEY.test(k)) {
      return `statusDetails key ${JSON.stringify(k.slice(0, 40))} must be 1-128 characters of [a-zA-Z0-9:_-]`;
    }
    if (typeof x !== 'string' || x.length < 1 || x.length > DETAIL_VALUE_MAX || /\p{C}/u.test(x)) {
      return `statusDetails.${k} must be a string of 1-${DETAIL_VALUE_MAX} characters without control characters`;
    }
  }
  return null;
}

function now(): number {
  return Math.floor(Date.now() / 1000);
}
