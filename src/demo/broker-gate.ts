// One client connection of the test broker, between the TLS socket and aedes. It sees every MQTT
// frame both ways, so it can count publishes and hold or drop PUBACKs (the reliability hooks),
// enforce IoT Core's per-connection rules before aedes sees a publish (iotcore-rules.ts), and
// translate MQTT 5 clients to the 3.1.1 that aedes speaks (mqtt5-bridge.ts).

import { Duplex } from 'node:stream';
import type tls from 'node:tls';
import type { Clock } from '../types.js';
import {
  CONNECT,
  FrameSplitter,
  PUBACK,
  PUBLISH,
  frameType,
  parsePublishHeader,
  propertiesLength,
  pubackId,
  publishQos,
} from './mqtt-frames.js';
import {
  ConnectionQuota,
  publishViolation,
  type ConnectRegistry,
  type IotCoreRules,
  type RuleCounts,
} from './iotcore-rules.js';
import { Mqtt5Bridge, REASON, readConnect, v4, v5, type Mqtt5Options } from './mqtt5-bridge.js';

/** What clients published, counted on the wire. `maxOutstanding`: most unacknowledged QoS 1 publishes one connection ever had. */
export interface BrokerCounts {
  /** QoS 1 publishes read from clients (discarded ones too) and their frame bytes. */
  messages: number;
  bytes: number;
  acksSent: number;
  maxOutstanding: number;
  connections: number;
  /** Connections accepted and destroyed at once while the broker was cut. */
  refusedWhileCut: number;
}

/** `holdTopics`: hold only the PUBACKs of publishes to the topics it accepts (the data, not jobs). */
export type AckMode =
  'pass' | 'hold' | 'drop' | { dropEvery: number } | { holdTopics: (topic: string) => boolean };
type AckedHook = (topic: string, payload: Buffer) => void;

export interface GateContext {
  counts: BrokerCounts;
  rules: IotCoreRules | null;
  ruleCounts: RuleCounts;
  connects: ConnectRegistry | null;
  mqtt5: Mqtt5Options;
  clock: Clock;
  mode(): AckMode;
  onAcked?: AckedHook;
  onPublishRead?: (frameBytes: number) => void;
}

/** What admitting one client frame came to: bytes for aedes, or wait, drop it, or the gate closed. */
type Admit = Buffer | 'wait' | 'drop' | 'close';

export class Gate {
  readonly stream: Duplex;
  /** QoS 1 publishes forwarded to aedes whose PUBACK has not reached the client. */
  outstanding = 0;
  /** PUBACKs held by pauseAcks (3.1.1 frames from aedes). */
  held: Buffer[] = [];
  clientId: string | null = null;
  protocol: 4 | 5 | null = null;
  private bridge: Mqtt5Bridge | null = null;
  /** QoS 1 publishes by packet id, until their PUBACK passes (only kept with an onAcked hook). */
  private readonly unacked = new Map<number, { topic: string; payload: Buffer }>();
  /** Topics of QoS 1 publishes by packet id, while a holdTopics mode is on. */
  private readonly topics = new Map<number, string>();
  /** PUBACKs aedes produced on this connection (for dropEvery). */
  private acks = 0;
  private readonly inbound = new FrameSplitter();
  private readonly outbound = new FrameSplitter();
  /** Client frames read but not yet given to aedes, in order (a delayed publish holds the rest). */
  private pending: Buffer[] = [];
  private blocked: 'aedes' | 'inflight' | 'bytes' | null = null;
  private closing = false;
  private timer: unknown = null;
  private readonly quota: ConnectionQuota | null;

  constructor(
    readonly socket: tls.TLSSocket,
    private readonly ctx: GateContext,
  ) {
    this.quota = ctx.rules === null ? null : new ConnectionQuota(ctx.rules, ctx.clock);
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const gate = this;
    this.stream = new Duplex({
      read() {
        if (gate.blocked === 'aedes') gate.blocked = null;
        gate.pump();
      },
      write(chunk: Buffer, _enc, cb) {
        gate.fromBroker(chunk, cb);
      },
      final(cb) {
        socket.end();
        cb();
      },
      destroy(err, cb) {
        socket.destroy();
        cb(err);
      },
    });
  }

  /** Starts moving frames both ways. */
  attach(): void {
    this.socket.on('data', (chunk: Buffer) => {
      if (this.closing) return; // what a closing connection still sends is never read
      const onRead = this.ctx.onPublishRead;
      for (const f of this.inbound.push(chunk)) {
        if (onRead !== undefined && frameType(f) === PUBLISH) onRead(f.length);
        this.pending.push(f);
      }
      this.pump();
    });
    this.socket.on('end', () => this.stream.push(null));
    this.socket.on('error', () => this.stream.destroy());
    this.socket.on('close', () => {
      if (this.timer !== null) this.ctx.clock.clearTimeout(this.timer);
      this.stream.destroy();
    });
  }

  /** Closes the connection: MQTT 5 clients get a DISCONNECT with `reason` first. */
  disconnect(reason: number): void {
    if (this.protocol === 5) this.closeWith(v5({ cmd: 'disconnect', reasonCode: reason }));
    else {
      this.closing = true;
      this.socket.destroy();
    }
  }

  /** Sends (or forgets) the PUBACKs pauseAcks held. */
  releaseHeld(send: boolean): void {
    const frames = this.held.splice(0);
    if (!send || frames.length === 0 || this.socket.destroyed) return;
    for (const f of frames) this.ackPassed(f);
    this.toClient(frames);
  }

  private pump(): void {
    // One push to aedes per pump, not per frame: a chunk of small publishes stays one chunk.
    const batch: Buffer[] = [];
    while (this.pending.length > 0 && this.blocked === null && !this.closing) {
      const out = this.admit(this.pending[0]!);
      if (out === 'wait') break;
      this.pending.shift();
      if (out === 'close') this.pending = [];
      else if (out !== 'drop') batch.push(out);
    }
    if (batch.length > 0 && !this.stream.push(batch.length === 1 ? batch[0] : Buffer.concat(batch))) {
      this.blocked = 'aedes';
    }
    if (this.pending.length > 0 || this.blocked !== null) this.socket.pause();
    else if (!this.closing) this.socket.resume();
  }

  private admit(f: Buffer): Admit {
    const type = frameType(f);
    if (this.protocol === null) return type === CONNECT ? this.admitConnect(f) : f;
    if (type === PUBLISH) return this.admitPublish(f);
    return this.bridge === null ? f : this.translate(f);
  }

  private admitConnect(f: Buffer): Admit {
    const pk = readConnect(f);
    if (pk === null) return f; // aedes refuses what it cannot parse
    this.clientId = pk.clientId;
    this.protocol = pk.protocolVersion === 5 ? 5 : 4;
    if (this.protocol === 5) this.bridge = new Mqtt5Bridge(this.ctx.mqtt5);
    if (this.ctx.connects !== null && !this.ctx.connects.admit(pk.clientId)) {
      this.ctx.ruleCounts.refusedConnects++;
      this.closeWith(
        this.protocol === 5
          ? v5({ cmd: 'connack', sessionPresent: false, reasonCode: REASON.connectionRateExceeded })
          : v4({ cmd: 'connack', sessionPresent: false, returnCode: 3 }),
      );
      return 'close';
    }
    return this.bridge === null ? f : this.translate(f, pk);
  }

  private admitPublish(f: Buffer): Admit {
    const qos = publishQos(f);
    const { rules, ruleCounts: rc, counts, onAcked } = this.ctx;
    const m = this.ctx.mode();
    const byTopic = typeof m === 'object' && 'holdTopics' in m;
    const hdr = rules !== null || onAcked !== undefined || byTopic ? parsePublishHeader(f) : null;
    const payloadAt = hdr === null ? 0 : hdr.rest + (this.protocol === 5 ? propertiesLength(f, hdr.rest) : 0);
    if (rules !== null && hdr !== null) {
      const broken = publishViolation(rules, hdr.topic, f.length - payloadAt);
      if (broken !== null) {
        if (broken === 'payload') rc.refusedPayload++;
        else rc.refusedTopic++;
        this.disconnect(broken === 'payload' ? REASON.packetTooLarge : REASON.topicNameInvalid);
        return 'close';
      }
      if (qos > 0 && this.outstanding >= rules.inflight) {
        rc.delayedInflight++;
        this.blocked = 'inflight';
        return 'wait';
      }
      const wait = this.quota!.bytesWait(f.length);
      if (wait > 0) {
        rc.delayedBytes++;
        rc.delayedBytesMs += wait;
        this.blocked = 'bytes';
        this.timer = this.ctx.clock.setTimeout(() => {
          this.timer = null;
          this.blocked = null;
          this.pump();
        }, wait);
        return 'wait';
      }
      this.quota!.takeBytes(f.length);
    }
    if (qos > 0) {
      counts.messages++;
      counts.bytes += f.length;
    }
    if (rules !== null && !this.quota!.takePublish()) {
      rc.discarded++;
      // IoT Core forgets a discarded publish: no PUBACK under 3.1.1, "quota exceeded" under 5.
      if (qos > 0 && this.protocol === 5 && hdr !== null) {
        this.socket.write(v5({ cmd: 'puback', messageId: hdr.id, reasonCode: REASON.quotaExceeded }));
      }
      return 'drop';
    }
    if (qos > 0) {
      this.outstanding++;
      counts.maxOutstanding = Math.max(counts.maxOutstanding, this.outstanding);
      if (byTopic && hdr !== null) this.topics.set(hdr.id, hdr.topic.toString('utf8'));
      if (onAcked !== undefined && hdr !== null) {
        const payload = Buffer.from(f.subarray(payloadAt));
        this.unacked.set(hdr.id, { topic: hdr.topic.toString('utf8'), payload });
      }
    }
    return this.bridge === null ? f : this.translate(f);
  }

  private translate(f: Buffer, connect?: Parameters<Mqtt5Bridge['toBroker']>[1]): Admit {
    const r = this.bridge!.toBroker(f, connect);
    if (Buffer.isBuffer(r)) return r;
    this.disconnect(r.reason);
    return 'close';
  }

  /** aedes wrote to the client: PUBACKs go through the ack hooks, then everything to the socket. */
  private fromBroker(chunk: Buffer, cb: () => void): void {
    const pass: Buffer[] = [];
    for (const f of this.outbound.push(chunk)) {
      if (frameType(f) === PUBACK) {
        const m = this.ctx.mode();
        this.acks++;
        if (m === 'drop' || (typeof m === 'object' && 'dropEvery' in m && this.acks % m.dropEvery === 0)) {
          this.unacked.delete(pubackId(f));
          continue;
        }
        const topic = this.topics.get(pubackId(f));
        this.topics.delete(pubackId(f));
        if (
          m === 'hold' ||
          (typeof m === 'object' && 'holdTopics' in m && topic !== undefined && m.holdTopics(topic))
        ) {
          this.held.push(f);
          continue;
        }
        this.ackPassed(f);
      }
      pass.push(f);
    }
    if (pass.length === 0 || this.socket.destroyed) return cb();
    this.toClient(pass, cb);
  }

  /** A PUBACK is about to reach the client: tell onAcked; a publish held for in-flight may go. */
  private ackPassed(f: Buffer): void {
    this.outstanding--;
    this.ctx.counts.acksSent++;
    const id = pubackId(f);
    const pub = this.unacked.get(id);
    if (pub !== undefined) {
      this.unacked.delete(id);
      this.ctx.onAcked?.(pub.topic, pub.payload);
    }
    if (this.blocked === 'inflight') {
      this.blocked = null;
      // Not from inside aedes' write: pushing to it now would re-enter its parser.
      queueMicrotask(() => this.pump());
    }
  }

  private toClient(frames: Buffer[], cb?: () => void): void {
    const bridge = this.bridge;
    const out = bridge === null ? frames : frames.map((f) => bridge.toClient(f));
    this.socket.write(out.length === 1 ? out[0]! : Buffer.concat(out), () => cb?.());
  }

  /** Sends a last frame, then closes (after a grace, so the client reads it before any reset). */
  private closeWith(frame: Buffer): void {
    this.closing = true;
    this.socket.end(frame);
    const t = setTimeout(() => this.socket.destroy(), 2000);
    t.unref();
    this.socket.once('close', () => clearTimeout(t));
  }
}
