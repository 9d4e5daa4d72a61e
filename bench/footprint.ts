// Section 5's parent side: runs footprint-child.ts in a fresh process per measurement.

import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { FootprintReply, FootprintRequest } from './footprint-child.js';

export function runFootprint(req: FootprintRequest): Promise<FootprintReply> {
  const child = fork(fileURLToPath(new URL('./footprint-child.js', import.meta.url)), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    let reply: FootprintReply | null = null;
    child.once('message', (m: FootprintReply) => (reply = m));
    child.once('exit', (code) => {
      if (reply !== null) resolve(reply);
      else reject(new Error(`bench footprint child (${req.mode}) exited with ${String(code)}`));
    });
    child.send(req);
  });
}
