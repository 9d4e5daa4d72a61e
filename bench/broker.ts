// The bench process's handle on the broker child (broker-child.ts): one request at a time.

import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { RuleCounts } from '../src/demo/broker.js';
import type { DemoPki } from '../src/demo/pki.js';
import type { BrokerReply, BrokerRequest } from './broker-child.js';

export class BrokerProcess {
  private child: ChildProcess | null = null;
  url = '';

  /** `iotcore`: IoT Core's per-connection rules in front of the broker (src/demo/iotcore-rules.ts). */
  async start(pki: DemoPki, iotcore = false): Promise<void> {
    const child = fork(fileURLToPath(new URL('./broker-child.js', import.meta.url)), [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child = child;
    const r = await this.ask({ cmd: 'start', pki, iotcore });
    if (r.cmd !== 'started') throw new Error('bench broker did not start');
    this.url = r.url;
  }

  async record(on: boolean): Promise<void> {
    await this.ask({ cmd: 'record', on });
  }

  /** Time (ms) and PUBLISH frame bytes of each client publish since record(true). */
  async events(): Promise<{ at: number[]; bytes: number[]; rules: RuleCounts }> {
    const r = await this.ask({ cmd: 'events' });
    if (r.cmd !== 'events') throw new Error('bench broker: unexpected reply');
    return { at: r.at, bytes: r.bytes, rules: r.rules };
  }

  async close(): Promise<void> {
    const child = this.child;
    if (child === null) return;
    this.child = null;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    await this.askOf(child, { cmd: 'close' }).catch(() => undefined);
    const timer = setTimeout(() => child.kill(), 3000);
    await exited;
    clearTimeout(timer);
  }

  private ask(req: BrokerRequest): Promise<BrokerReply> {
    if (this.child === null) return Promise.reject(new Error('bench broker is not running'));
    return this.askOf(this.child, req);
  }

  private askOf(child: ChildProcess, req: BrokerRequest): Promise<BrokerReply> {
    return new Promise<BrokerReply>((resolve, reject) => {
      const onExit = (): void => reject(new Error('bench broker exited'));
      child.once('exit', onExit);
      child.once('message', (m: BrokerReply) => {
        child.off('exit', onExit);
        resolve(m);
      });
      child.send(req);
    });
  }
}
