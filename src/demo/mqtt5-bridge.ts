// MQTT 5 clients in front of aedes, which speaks 3.1.1 only: each frame of a v5 connection is
// parsed with mqtt-packet and written again as 3.1.1 for aedes, and aedes' answers go back as v5.
// Properties from the client are dropped (aedes could not use them); the CONNACK carries the
// properties IoT Core advertises (Receive Maximum, Maximum Packet Size, Maximum QoS 1).

import { generate, parser, type Packet, type IConnectPacket } from 'mqtt-packet';

export interface Mqtt5Options {
  /** Advertised in CONNACK: how many unacknowledged QoS 1 publishes the client may have. */
  receiveMaximum: number;
  /** Advertised in CONNACK: the largest packet the broker accepts (payload + headers). */
  maximumPacketSize: number;
}

/** 128 KiB of payload plus room for the fixed header, a 256-byte topic, packet id and properties. */
export const MQTT5_DEFAULTS: Readonly<Mqtt5Options> = Object.freeze({
  receiveMaximum: 100,
  maximumPacketSize: 128 * 1024 + 512,
});

/** MQTT 5 reason codes the test broker sends. */
export const REASON = Object.freeze({
  topicNameInvalid: 0x90,
  topicAliasInvalid: 0x94,
  packetTooLarge: 0x95,
  quotaExceeded: 0x97,
  connectionRateExceeded: 0x9f,
  protocolError: 0x82,
});

/** 3.1.1 CONNACK return codes → MQTT 5 reason codes. */
const CONNACK_REASON: Record<number, number> = { 0: 0, 1: 0x84, 2: 0x85, 3: 0x88, 4: 0x86, 5: 0x87 };

type Parser = ReturnType<typeof parser>;

/** Parses one whole frame; null on a malformed one. */
function parseFrame(p: Parser, frame: Buffer): Packet | null {
  let out: Packet | null = null;
  let failed = false;
  const onPacket = (pk: Packet): void => {
    out = pk;
  };
  const onError = (): void => {
    failed = true;
  };
  p.on('packet', onPacket);
  p.on('error', onError);
  p.parse(frame);
  p.off('packet', onPacket);
  p.off('error', onError);
  return failed ? null : out;
}

/** Reads a client's CONNECT (any protocol level) for its client id and protocol. */
export function readConnect(frame: Buffer): IConnectPacket | null {
  const pk = parseFrame(parser(), frame);
  return pk !== null && pk.cmd === 'connect' ? pk : null;
}

export function v4(pk: Packet): Buffer {
  return generate(pk, { protocolVersion: 4 });
}

export function v5(pk: Packet): Buffer {
  return generate(pk, { protocolVersion: 5 });
}

/** One v5 connection's translation, both ways. Unknown or malformed input yields a reason to close. */
export class Mqtt5Bridge {
  private readonly fromClient = parser({ protocolVersion: 5 });
  private readonly fromBroker = parser({ protocolVersion: 4 });
  /** Topic filters per pending UNSUBSCRIBE (a v5 UNSUBACK has one reason code per filter). */
  private readonly unsubscribes = new Map<number, number>();

  constructor(private readonly opts: Mqtt5Options) {}

  /** A v5 client frame as 3.1.1 for aedes, or the reason code to disconnect with. */
  toBroker(frame: Buffer, connect?: IConnectPacket): Buffer | { reason: number } {
    const pk = connect ?? parseFrame(this.fromClient, frame);
    if (pk === null) return { reason: REASON.protocolError };
    switch (pk.cmd) {
      case 'connect': {
        // Session expiry 0 (the v5 default) ends the session with the connection: 3.1.1's clean.
        const clean = pk.clean !== false || (pk.properties?.sessionExpiryInterval ?? 0) === 0;
        const will = pk.will === undefined ? undefined : { ...pk.will, properties: undefined };
        return v4({ ...pk, protocolVersion: 4, clean, will, properties: undefined });
      }
      case 'publish':
        if (pk.properties?.topicAlias !== undefined) return { reason: REASON.topicAliasInvalid };
        return v4({ ...pk, properties: undefined });
      case 'puback':
      case 'pubrec':
      case 'pubrel':
      case 'pubcomp':
        return v4({ cmd: pk.cmd, messageId: pk.messageId });
      case 'subscribe':
        return v4({
          cmd: 'subscribe',
          messageId: pk.messageId,
          subscriptions: pk.subscriptions.map((s) => ({ topic: s.topic, qos: s.qos })),
        });
      case 'unsubscribe':
        this.unsubscribes.set(pk.messageId ?? 0, pk.unsubscriptions.length);
        return v4({ cmd: 'unsubscribe', messageId: pk.messageId, unsubscriptions: pk.unsubscriptions });
      case 'pingreq':
        return v4({ cmd: 'pingreq' });
      case 'disconnect':
        return v4({ cmd: 'disconnect' });
      // Server-to-client packets, and AUTH (no enhanced authentication here): a protocol error.
      case 'connack':
      case 'suback':
      case 'unsuback':
      case 'pingresp':
      case 'auth':
        return { reason: REASON.protocolError };
    }
  }

  /** An aedes (3.1.1) frame as MQTT 5 for the client. */
  toClient(frame: Buffer): Buffer {
    const pk = parseFrame(this.fromBroker, frame);
    if (pk === null) return frame;
    switch (pk.cmd) {
      case 'connack': {
        const reasonCode = CONNACK_REASON[pk.returnCode ?? 0] ?? 0x80;
        const properties =
          reasonCode === 0
            ? {
                receiveMaximum: this.opts.receiveMaximum,
                maximumPacketSize: this.opts.maximumPacketSize,
                maximumQoS: 1,
              }
            : undefined;
        return v5({ cmd: 'connack', sessionPresent: pk.sessionPresent, reasonCode, properties });
      }
      case 'suback':
        return v5({ ...pk, granted: (pk.granted as number[]).map((g) => (g === 128 ? 0x80 : g)) });
      case 'unsuback': {
        const n = this.unsubscribes.get(pk.messageId ?? 0) ?? 1;
        this.unsubscribes.delete(pk.messageId ?? 0);
        return v5({ cmd: 'unsuback', messageId: pk.messageId, granted: new Array<number>(n).fill(0) });
      }
      case 'puback':
      case 'pubrec':
      case 'pubrel':
      case 'pubcomp':
        return v5({ cmd: pk.cmd, messageId: pk.messageId, reasonCode: 0 });
      // The same in both versions once written (aedes sets no v5 fields).
      case 'publish':
      case 'pingresp':
      case 'disconnect':
      case 'connect':
      case 'pingreq':
      case 'subscribe':
      case 'unsubscribe':
      case 'auth':
        return v5(pk);
    }
  }
}
