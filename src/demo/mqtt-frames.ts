// Whole MQTT frames out of a byte stream, and the few header fields the test broker's gate reads
// without a full parse (the fast path for MQTT 3.1.1 clients with no rules on).

export const PUBLISH = 3;
export const PUBACK = 4;
export const CONNECT = 1;

/** Splits a byte stream into whole MQTT frames (fixed header + remaining length). */
export class FrameSplitter {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Buffer[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const frames: Buffer[] = [];
    for (;;) {
      let len = 0;
      let mul = 1;
      let i = 1;
      let complete = false;
      while (i < this.buf.length && i <= 4) {
        const b = this.buf[i]!;
        len += (b & 0x7f) * mul;
        mul *= 128;
        i++;
        if ((b & 0x80) === 0) {
          complete = true;
          break;
        }
      }
      if (!complete || this.buf.length < i + len) return frames;
      frames.push(this.buf.subarray(0, i + len));
      this.buf = this.buf.subarray(i + len);
    }
  }
}

export function frameType(f: Buffer): number {
  return f[0]! >> 4;
}

export function publishQos(f: Buffer): number {
  return (f[0]! >> 1) & 3;
}

/** Where the variable header of a frame starts (after the fixed header's remaining length). */
function bodyStart(f: Buffer): number {
  let i = 1;
  while (i < f.length && (f[i]! & 0x80) !== 0) i++;
  return i + 1;
}

/**
 * Topic, packet id (0 under QoS 0) and where the rest starts of an MQTT PUBLISH frame. Under
 * MQTT 5 `rest` begins with the properties; under 3.1.1 it is the payload.
 */
export function parsePublishHeader(f: Buffer): { topic: Buffer; id: number; rest: number } | null {
  const i = bodyStart(f);
  if (i + 2 > f.length) return null;
  const topicLen = f.readUInt16BE(i);
  const topic = f.subarray(i + 2, i + 2 + topicLen);
  let at = i + 2 + topicLen;
  let id = 0;
  if (publishQos(f) > 0) {
    if (at + 2 > f.length) return null;
    id = f.readUInt16BE(at);
    at += 2;
  }
  return at > f.length ? null : { topic, id, rest: at };
}

/** The packet id of a PUBACK frame. */
export function pubackId(f: Buffer): number {
  return f.length >= 4 ? f.readUInt16BE(2) : -1;
}

/** Length of an MQTT 5 property block (a variable byte integer) at `at`, including its own bytes. */
export function propertiesLength(f: Buffer, at: number): number {
  let len = 0;
  let mul = 1;
  let i = at;
  while (i < f.length && i < at + 4) {
    const b = f[i]!;
    len += (b & 0x7f) * mul;
    mul *= 128;
    i++;
    if ((b & 0x80) === 0) break;
  }
  return i - at + len;
}
