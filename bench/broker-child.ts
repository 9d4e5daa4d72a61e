// The benchmark's broker runs in its own process, so `process.cpuUsage()` in the bench process
// counts the gateway side only, and the broker gets its own core. It is the demo's TLS broker
// (aedes, client certificates required), with IoT Core's per-connection rules in front of it when
// asked (section 4: src/demo/iotcore-rules.ts, counting what they discarded or delayed). It
// records, when asked, the time and frame size of every client PUBLISH as the broker reads it off
// the socket, before the rules delay it: the quotas are checked where IoT Core counts them. (Timed
// at aedes' `publish` event instead, after the rules and aedes' own processing, a second held up to
// 550 KB in a drain the rules kept to 512 KiB in every second: aedes' jitter, not the gateway's.)

import type { DemoPki } from '../src/demo/pki.js';
import { startTlsBroker, type RuleCounts, type TlsBroker } from '../src/demo/broker.js';

export type BrokerRequest =
  | { cmd: 'start'; pki: DemoPki; iotcore?: boolean }
  | { cmd: 'record'; on: boolean }
  | { cmd: 'events' }
  | { cmd: 'close' };

export type BrokerReply =
  | { cmd: 'started'; url: string }
  | { cmd: 'events'; at: number[]; bytes: number[]; rules: RuleCounts }
  | { cmd: 'ok' };

let broker: TlsBroker | null = null;
let recording = false;
let at: number[] = [];
let bytes: number[] = [];

function reply(msg: BrokerReply): void {
  process.send?.(msg);
}

async function handle(req: BrokerRequest): Promise<void> {
  switch (req.cmd) {
    case 'start':
      broker = await startTlsBroker({
        pki: req.pki,
        host: '127.0.0.1',
        ...(req.iotcore === true ? { iotcore: true } : {}),
        onPublishRead: (n) => {
          if (!recording) return;
          at.push(Date.now());
          bytes.push(n);
        },
      });
      reply({ cmd: 'started', url: broker.url });
      return;
    case 'record':
      recording = req.on;
      if (req.on) {
        at = [];
        bytes = [];
      }
      reply({ cmd: 'ok' });
      return;
    case 'events':
      reply({ cmd: 'events', at, bytes, rules: { ...broker!.rules } });
      return;
    case 'close':
      await broker?.close();
      reply({ cmd: 'ok' });
      process.disconnect?.();
      return;
  }
}

process.on('message', (m: BrokerRequest) => {
  handle(m).catch((err: unknown) => {
    console.error('bench broker:', err instanceof Error ? err.message : String(err));
    process.exit(1);
  });
});
