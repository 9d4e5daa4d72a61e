// The benchmark's broker runs in its own process, so `process.cpuUsage()` in the bench process
// counts the gateway side only, and the broker gets its own core. It is the demo's TLS broker
// (aedes, client certificates required), with IoT Core's per-connection rules in front of it when
// asked (section 4: src/demo/iotcore-rules.ts, counting what they discarded or delayed). It records, when asked, the time and PUBLISH frame size
// of every client publish, so quotas can be checked on what the broker actually received.

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

/** Bytes of an MQTT 3.1.1 QoS 1 PUBLISH frame: fixed header, remaining length, topic, packet id, payload. */
export function publishFrameBytes(topicBytes: number, payloadBytes: number): number {
  const remaining = 2 + topicBytes + 2 + payloadBytes;
  let lenBytes = 1;
  while (remaining >= 128 ** lenBytes) lenBytes++;
  return 1 + lenBytes + remaining;
}

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
      });
      broker.aedes.on('publish', (packet, client) => {
        if (!recording || client === null || client === undefined) return;
        at.push(Date.now());
        bytes.push(publishFrameBytes(Buffer.byteLength(packet.topic), packet.payload.length));
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
