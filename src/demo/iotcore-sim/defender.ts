// A SIMULATOR of a remote AWS service: AWS IoT Device Defender's device-side metrics topics, on the
// test broker's aedes (IoT Core cannot be reached from the test machines). Written from AWS's
// developer guide ("Sending metrics from devices", "Device-side metrics document specification",
// "Custom metrics"): reports on `$aws/things/<thing>/defender/metrics/json`, answered on
// `/accepted` ({thingName, reportId, status: ACCEPTED, timestamp}) or `/rejected` (status REJECTED
// with statusDetails {ErrorCode, ErrorMessage}); a report needs `header.report_id` (a number above
// the thing's last) and `header.version` "1.0", a `metrics` object (required, may be empty), and custom metrics as lists of one {number},
// {number_list}, {string_list} or {ip_list}. Not simulated: the standard `metrics` block's
// contents, security profiles and alarms, the cbor format, and the exact error codes AWS uses
// (this simulator names them InvalidPayload and Throttled).

import type { Aedes, AedesPublishPacket } from 'aedes';

export interface DefenderReport {
  thing: string;
  reportId: number;
  customMetrics: Record<string, unknown[]>;
}

const TOPIC = /^\$aws\/things\/([^/]+)\/defender\/metrics\/json$/;

export class DefenderService {
  readonly accepted: DefenderReport[] = [];
  readonly rejected: { thing: string; code: string }[] = [];
  private readonly lastId = new Map<string, number>();
  private readonly listener = (packet: AedesPublishPacket, client: unknown): void => {
    if (client === null || client === undefined) return;
    const m = TOPIC.exec(packet.topic);
    if (m !== null) this.handle(packet.topic, m[1]!, Buffer.from(packet.payload));
  };

  constructor(private readonly aedes: Aedes) {
    aedes.on('publish', this.listener);
  }

  close(): void {
    this.aedes.removeListener('publish', this.listener);
  }

  private handle(topic: string, thing: string, payload: Buffer): void {
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
    } catch {
      return this.reject(topic, thing, 0, 'InvalidPayload', 'the report is not JSON');
    }
    const header = body.header as { report_id?: unknown; version?: unknown } | undefined;
    const id = typeof header?.report_id === 'number' ? header.report_id : 0;
    if (header?.version !== '1.0' || id <= 0) {
      return this.reject(
        topic,
        thing,
        id,
        'InvalidPayload',
        'header.report_id and header.version "1.0" are required',
      );
    }
    if (typeof body.metrics !== 'object' || body.metrics === null || Array.isArray(body.metrics)) {
      return this.reject(topic, thing, id, 'InvalidPayload', 'the metrics block is required');
    }
    if (id <= (this.lastId.get(thing) ?? 0)) {
      return this.reject(topic, thing, id, 'InvalidPayload', 'report_id must grow');
    }
    const custom = (body.custom_metrics ?? {}) as Record<string, unknown>;
    for (const v of Object.values(custom)) {
      const ok =
        Array.isArray(v) &&
        v.length === 1 &&
        typeof v[0] === 'object' &&
        v[0] !== null &&
        ['number', 'number_list', 'string_list', 'ip_list'].some((k) => k in (v[0] as object));
      if (!ok) return this.reject(topic, thing, id, 'InvalidPayload', 'a custom metric has no valid value');
    }
    this.lastId.set(thing, id);
    this.accepted.push({ thing, reportId: id, customMetrics: custom as Record<string, unknown[]> });
    this.send(`${topic}/accepted`, {
      thingName: thing,
      reportId: id,
      status: 'ACCEPTED',
      timestamp: Date.now(),
    });
  }

  private reject(topic: string, thing: string, id: number, code: string, message: string): void {
    this.rejected.push({ thing, code });
    this.send(`${topic}/rejected`, {
      thingName: thing,
      reportId: id,
      status: 'REJECTED',
      statusDetails: { ErrorCode: code, ErrorMessage: message },
      timestamp: Date.now(),
    });
  }

  private send(topic: string, body: unknown): void {
    const payload = Buffer.from(JSON.stringify(body));
    this.aedes.publish(
      { cmd: 'publish', topic, payload, qos: 1, dup: false, retain: false },
      () => undefined,
    );
  }
}
