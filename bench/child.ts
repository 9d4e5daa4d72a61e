// The bench's fresh-process measurements (footprint-child.ts, drain-child.ts): the parent forks a
// child, sends it one request over IPC and gets one reply back; the child exits after replying.
// Structured-clone serialization, so NaN (a drain that did not finish) stays NaN.

import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Runs `module` (a URL next to the caller) in a fresh process with `req`; resolves with its reply. */
export function askChild<Req, Reply>(module: URL, req: Req, what: string): Promise<Reply> {
  const child = fork(fileURLToPath(module), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'advanced',
  });
  return new Promise((resolve, reject) => {
    let reply: { value: Reply } | null = null;
    child.once('message', (m: Reply) => (reply = { value: m }));
    child.once('exit', (code) => {
      if (reply !== null) resolve(reply.value);
      else reject(new Error(`bench ${what} child exited with ${String(code)}`));
    });
    child.send(req as object);
  });
}

/** The child side: answers the one request with `handle`, then exits (1 when it threw). */
export function answerOnce<Req, Reply>(what: string, handle: (req: Req) => Promise<Reply>): void {
  process.once('message', (req: Req) => {
    handle(req).then(
      (reply) => {
        process.send?.(reply, () => process.exit(0));
      },
      (err: unknown) => {
        console.error(`bench ${what}:`, err instanceof Error ? err.message : String(err));
        process.exit(1);
      },
    );
  });
}
