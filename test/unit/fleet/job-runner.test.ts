// The IoT Jobs runner (src/fleet/job-runner.ts) with fake time, real files in a temporary
// gateway.dataDir and a scripted control channel answering as the Jobs service does: a final update
// the service keeps rejecting is sent a bounded number of times, then again after a growing pause,
// and the job is never run twice; a job cancelled before it started is not run; statusDetails are
// made what AWS takes.

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JOB_FILE, JobRunner, UPDATE_ATTEMPTS, statusDetails } from '../../../src/fleet/job-runner.js';
import type { OperationContext } from '../../../src/fleet/operations.js';
import type { Control, ControlHandler } from '../../../src/uplink/control.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { quietLog, waitFor } from '../../helpers/site.js';

const P = '$aws/things/gw/jobs';

type Reply = { topic: string; body: Record<string, unknown> } | null;

/** A control channel whose every publish is answered by `respond` (on a later tick, like a broker). */
class ScriptedControl implements Control {
  readonly connected = true;
  readonly sent: { topic: string; body: Record<string, unknown> }[] = [];
  private readonly handlers = new Set<ControlHandler>();

  constructor(public respond: (topic: string, body: Record<string, unknown>) => Reply) {}

  subscribe(): Promise<void> {
    return Promise.resolve();
  }
  unsubscribe(): Promise<void> {
    return Promise.resolve();
  }
  publish(topic: string, payload: string | Buffer): Promise<void> {
    const body = JSON.parse(payload.toString()) as Record<string, unknown>;
    this.sent.push({ topic, body });
    const r = this.respond(topic, body);
    if (r !== null) {
      setImmediate(() => {
        for (const h of this.handlers) h(r.topic, Buffer.from(JSON.stringify(r.body)));
      });
    }
    return Promise.resolve();
  }
  onMessage(handler: ControlHandler): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }
  onUp(): () => void {
    return () => undefined;
  }
}

const context = {} as OperationContext;

describe('IoT Jobs runner', () => {
  let dir: string;
  let clock: FakeClock;
  let runs: number;
  let runner: JobRunner | null;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edgegw-jobs-'));
    clock = new FakeClock();
    runs = 0;
    runner = null;
  });
  afterEach(async () => {
    await runner?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /**
   * Lets `ms` of fake time pass in steps of 100 ms; before each, waits (real time) until the runner
   * is parked on a timer, so its file writes and reads have finished.
   */
  async function pass(ms: number): Promise<void> {
    for (let t = 0; t < ms; t += 100) {
      await waitFor(() => clock.pending > 0, 5000, 'the runner waiting on a timer');
      await clock.advanceAsync(100);
    }
  }
  function start(control: Control): Promise<void> {
    runner = new JobRunner({
      control,
      thing: 'gw',
      dataDir: dir,
      log: quietLog(),
      clock,
      context,
      operations: new Map([
        [
          'count',
          () => {
            runs++;
            return Promise.resolve({ runs: String(runs) });
          },
        ],
        [
          // Runs, and leaves gateway.dataDir unable to take the job's record (as a full disk would).
          'count-then-break-the-folder',
          async () => {
            runs++;
            await mkdir(join(dir, `${JOB_FILE}.tmp`));
            return { runs: String(runs) };
          },
        ],
      ]),
    });
    return runner.start();
  }
  /** The service: one execution j1 in progress until a final update is accepted (`accept`). */
  function service(
    accept: () => boolean,
    inProgress: 'accept' | 'cancelled' = 'accept',
    operation = 'count',
  ) {
    let over = false;
    return (topic: string, body: Record<string, unknown>): Reply => {
      const token = body.clientToken;
      if (topic === `${P}/start-next`) {
        const execution = over ? undefined : { jobId: 'j1', jobDocument: { operation } };
        return { topic: `${P}/start-next/accepted`, body: { execution, clientToken: token } };
      }
      const final = body.status !== 'IN_PROGRESS';
      const ok = final ? accept() : inProgress === 'accept';
      // Over once a final update passes, or when it was cancelled (its IN_PROGRESS refused).
      if (final ? ok : !ok) over = true;
      const code = final ? 'InternalError' : 'InvalidStateTransition';
      return ok
        ? {
            topic: `${topic}/accepted`,
            body: { executionState: { status: body.status }, clientToken: token },
          }
        : { topic: `${topic}/rejected`, body: { code, message: 'no', clientToken: token } };
    };
  }
  const finals = (c: ScriptedControl) =>
    c.sent.filter((s) => s.topic === `${P}/j1/update` && s.body.status === 'SUCCEEDED').length;
  const starts = (c: ScriptedControl) => c.sent.filter((s) => s.topic === `${P}/start-next`).length;

  it('a final update the service keeps rejecting: bounded attempts, a growing pause, never a second run', async () => {
    let accepting = false;
    const control = new ScriptedControl(service(() => accepting));
    await start(control);
    await waitFor(() => finals(control) === 1, 5000, 'the first final update');
    assert.equal(runs, 1);
    await pass(3_000);
    assert.equal(finals(control), UPDATE_ATTEMPTS, 'three attempts, one second then two apart');
    // Five minutes of a service that refuses: start-next is asked with backoff, not in a loop, and
    // the outcome (kept in fleet-job.json) is sent again instead of a new run.
    await pass(300_000);
    assert.equal(runs, 1);
    assert.ok(starts(control) <= 12, `start-next asked ${starts(control)} times in 5 minutes`);
    assert.ok(finals(control) > UPDATE_ATTEMPTS);
    const mark = JSON.parse(await readFile(join(dir, JOB_FILE), 'utf8')) as { result: { status: string } };
    assert.equal(mark.result.status, 'SUCCEEDED');
    accepting = true;
    await waitFor(
      async () => {
        await clock.advanceAsync(1000);
        return (
          runner!.status().last !== null &&
          (await readFile(join(dir, JOB_FILE)).then(
            () => false,
            () => true,
          ))
        );
      },
      10_000,
      'the update accepted and fleet-job.json removed',
    );
    assert.equal(runs, 1);
    assert.deepEqual(runner!.status().last, { jobId: 'j1', operation: 'count', status: 'SUCCEEDED' });
  });

  it('an outcome whose record cannot be written is still the one sent again, never "stopped while it ran"', async () => {
    let accepting = false;
    const control = new ScriptedControl(service(() => accepting, 'accept', 'count-then-break-the-folder'));
    await start(control);
    await waitFor(() => finals(control) === 1, 5000, 'the first final update');
    // The final updates rejected: start-next hands j1 back, and the outcome kept goes again.
    await pass(120_000);
    const updates = control.sent.filter(
      (x) => x.topic === `${P}/j1/update` && x.body.status !== 'IN_PROGRESS',
    );
    assert.ok(updates.length > UPDATE_ATTEMPTS, `${updates.length} final updates`);
    assert.deepEqual(new Set(updates.map((u) => u.body.status)), new Set(['SUCCEEDED']));
    assert.equal(runs, 1);
    accepting = true;
    await waitFor(
      async () => {
        await clock.advanceAsync(1000);
        return readFile(join(dir, JOB_FILE)).then(
          () => false,
          () => true,
        );
      },
      10_000,
      'the outcome accepted and the job record removed',
    );
    assert.equal(runs, 1);
  });

  it('a job the service no longer has in progress (cancelled) is not run', async () => {
    const control = new ScriptedControl(service(() => true, 'cancelled'));
    await start(control);
    await waitFor(() => runner!.status().lastError !== null, 5000, 'the IN_PROGRESS update refused');
    assert.equal(runs, 0);
    assert.match(
      runner!.status().lastError ?? '',
      /no longer in progress at the service \(InvalidStateTransition\)/,
    );
    await assert.rejects(readFile(join(dir, JOB_FILE)), { code: 'ENOENT' });
  });

  it('statusDetails as AWS takes them: valid keys, values cut to 1,024, no control characters, none empty', () => {
    assert.deepEqual(
      statusDetails({
        reason: 'a\nb\tc',
        empty: '',
        long: 'x'.repeat(2000),
        'bad key': 'v',
        'ok:key_1-2': 'v',
      }),
      { reason: 'a b c', empty: '-', long: 'x'.repeat(1024), 'ok:key_1-2': 'v' },
    );
  });
});
