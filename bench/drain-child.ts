// Section 4's drain, in a fresh process with a fresh broker (its own process), as the daemon runs in
// production: nothing the other sections allocated (a heap grown by a million readings, a broker
// that received them) slows this one down. The parent sends one request over IPC and gets the
// result back; runDrain (drain.ts) is the parent side.

import type { DemoPki } from '../src/demo/pki.js';
import type { Compression } from '../src/uplink/wire.js';
import { BrokerProcess } from './broker.js';
import { answerOnce } from './child.js';
import { measureDrain, type DrainResult } from './drain.js';

export interface DrainRequest {
  dir: string;
  pki: DemoPki;
  backlogReadings: number;
  maxSeconds: number;
  compression: Compression;
}

async function drain(req: DrainRequest): Promise<DrainResult> {
  const broker = new BrokerProcess();
  await broker.start(req.pki, true); // IoT Core's per-connection rules enforced
  try {
    return await measureDrain({ ...req, broker });
  } finally {
    await broker.close();
  }
}

answerOnce('drain', drain);
