// The reference consumer as a library (package.json `exports["./consumer"]`): decode one MQTT payload
// of the wire format into rows and notices, dedupe by (gw, seq), report gaps, persist the state.
// It depends on node:zlib, node:fs and JSON only, never on the gateway's runtime.

export {
  decodePayload,
  decodeMessage,
  payloadText,
  isZlibHeader,
  SUPPORTED_VERSION,
  GAP_WHYS,
  type Row,
  type Notice,
  type GapWhy,
  type DecodedMessage,
} from './decode.js';
export {
  Deduper,
  STATE_VERSION,
  type DeduperOptions,
  type DeduperState,
  type GapReport,
  type Accepted,
} from './dedupe.js';
export { loadState, saveState } from './state-file.js';
export { DecodeError, ConsumerStateError, type DecodeFailure } from './errors.js';
export { splitCaptured, type CapturedPayload } from './captured.js';
export { rowLine, noticeLine } from './ndjson.js';
export {
  createIotRuleHandler,
  createKinesisHandler,
  decodeRuleEvent,
  decodeKinesisData,
  iotRuleHandler,
  kinesisHandler,
  logRows,
  type Forward,
  type KinesisEvent,
  type KinesisRecord,
  type KinesisBatchResponse,
} from './lambda.js';
