// AWS Lambda handlers for the two ways IoT Core hands payloads over (deploy/aws/):
//  - an IoT Rule Lambda action: `SELECT * FROM 'dt/edgegw/+/telemetry'` delivers a plain payload
//    as its JSON object; a compressed (binary) one arrives as `{"data":"<base64>"}` from
//    `SELECT encode(*, 'base64') AS data FROM …`;
//  - a Kinesis Data Streams trigger (IoT Rule → Kinesis → Lambda): each `Records[].kinesis.data` is
//    the base64 of what the rule wrote (the JSON, the `{"data"}` wrapper, or the raw payload bytes).
//    An undecodable record or one whose forward failed is returned in `batchItemFailures` (enable
//    ReportBatchItemFailures on the event source mapping), so only it is retried.
// No dedupe here: Lambda retries and IoT Core redelivers, so the sink must be idempotent on
// (gw, seq, sensor, ts) (a sink keyed that way makes a repeated row an overwrite).

import { decodeMessage, decodePayload, type DecodedMessage, type Notice, type Row } from './decode.js';
import { unwrapData } from './captured.js';
import { DecodeError } from './errors.js';
import { noticeLine, rowLine } from './ndjson.js';

/** Where decoded rows go (a database, a stream, SiteWise …); a throw marks the input failed. */
export type Forward = (rows: Row[], notices: Notice[]) => Promise<void> | void;

export interface KinesisRecord {
  kinesis: { data: string; sequenceNumber: string; partitionKey?: string };
  eventID?: string;
  eventSource?: string;
}
export interface KinesisEvent {
  Records: KinesisRecord[];
}
export interface KinesisBatchResponse {
  batchItemFailures: { itemIdentifier: string }[];
}

/** Decodes what an IoT Rule delivered: the message object itself, or `{"data":"<base64>"}`. */
export function decodeRuleEvent(event: unknown): DecodedMessage {
  if (typeof event === 'string') return decodePayload(event);
  if (typeof event !== 'object' || event === null || Array.isArray(event)) {
    throw new DecodeError('shape', 'IoT Rule event must be the message object or {"data":"<base64>"}');
  }
  const wrapped = unwrapData(event as Record<string, unknown>);
  return wrapped === null ? decodeMessage(event) : decodePayload(wrapped);
}

/** Decodes the bytes one Kinesis record carries. */
export function decodeKinesisData(data: string): DecodedMessage {
  const bytes = Buffer.from(data, 'base64');
  if (bytes[0] === 0x7b) {
    let doc: unknown;
    try {
      doc = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw new DecodeError('json', 'Kinesis record data is not valid JSON');
    }
    return decodeRuleEvent(doc);
  }
  return decodePayload(bytes);
}

/** The IoT Rule action handler; returns what it forwarded. */
export function createIotRuleHandler(forward?: Forward) {
  return async (event: unknown): Promise<{ rows: Row[]; notices: Notice[] }> => {
    const m = decodeRuleEvent(event);
    await forward?.(m.rows, m.notices);
    return { rows: m.rows, notices: m.notices };
  };
}

/** The Kinesis trigger handler: forwards each record's rows; reports the records that failed. */
export function createKinesisHandler(forward: Forward, log: (line: string) => void = defaultLog) {
  return async (event: KinesisEvent): Promise<KinesisBatchResponse> => {
    if (typeof event !== 'object' || event === null || !Array.isArray(event.Records)) {
      throw new DecodeError('shape', 'Kinesis event must have Records[]');
    }
    const batchItemFailures: { itemIdentifier: string }[] = [];
    for (const rec of event.Records) {
      const id = rec?.kinesis?.sequenceNumber;
      if (typeof id !== 'string' || id === '')
        throw new DecodeError('shape', 'Kinesis record lacks sequenceNumber');
      try {
        const m = decodeKinesisData(rec.kinesis.data);
        await forward(m.rows, m.notices);
      } catch (err) {
        // Code and sequence number only: a message could quote payload bytes.
        const code = err instanceof DecodeError ? err.code : 'forward';
        log(
          JSON.stringify({ failed: id, code, message: err instanceof DecodeError ? err.message : undefined }),
        );
        batchItemFailures.push({ itemIdentifier: id });
      }
    }
    return { batchItemFailures };
  };
}

function defaultLog(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** The reference sink: rows as NDJSON lines on stdout (CloudWatch Logs). Replace it with yours. */
export const logRows: Forward = (rows, notices) => {
  let out = '';
  for (const r of rows) out += rowLine(r);
  for (const n of notices) out += noticeLine(n);
  if (out !== '') process.stdout.write(out);
};

/** Ready-made handlers (deploy/aws/template.json points at these): rows to CloudWatch Logs. */
export const iotRuleHandler = createIotRuleHandler(logRows);
export const kinesisHandler = createKinesisHandler(logRows);
