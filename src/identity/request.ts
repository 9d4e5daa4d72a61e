// One request/response exchange of AWS IoT's MQTT APIs (fleet provisioning here) over a Control:
// the reply topics are subscribed before the request is published (AWS: else the reply may be
// missed), the first reply on `…/accepted` or `…/rejected` ends it, and one timeout covers it all
// (SUBACK, PUBACK, reply): a throttled or lost request must never hang a caller.

import type { Clock } from '../types.js';
import type { Control } from '../uplink/control.js';
import { EdgegwError } from '../errors.js';

export interface RequestOptions {
  control: Control;
  clock: Clock;
  timeoutMs: number;
  /** Ends the wait at once (the daemon stops): the stop must stay bounded. */
  signal?: AbortSignal;
}

/** What `…/rejected` carries (AWS: statusCode, errorCode, errorMessage). */
export interface RejectedReply {
  statusCode: number | null;
  errorCode: string;
  errorMessage: string;
}

/** Publishes `body` to `topic` and resolves with the parsed `…/accepted` payload. */
export async function request(
  opts: RequestOptions,
  topic: string,
  body: object,
  what: string,
): Promise<Record<string, unknown>> {
  const accepted = `${topic}/accepted`;
  const rejected = `${topic}/rejected`;
  const { control, clock } = opts;
  let off: (() => void) | null = null;
  let timer: unknown = null;
  const reply = new Promise<{ topic: string; payload: Buffer }>((resolve, reject) => {
    off = control.onMessage((t, payload) => {
      if (t === accepted || t === rejected) resolve({ topic: t, payload });
    });
    timer = clock.setTimeout(() => {
      const s = Math.round(opts.timeoutMs / 100) / 10;
      reject(new EdgegwError('EDGEGW_E_PROVISION_TIMEOUT', `no reply to ${what} (${topic}) within ${s} s`));
    }, opts.timeoutMs);
    opts.signal?.addEventListener('abort', () =>
      reject(new EdgegwError('EDGEGW_E_PROVISION_TIMEOUT', `${what} abandoned: the daemon is stopping`)),
    );
  });
  // A rejection before anyone awaits `reply` must not count as unhandled.
  reply.catch(() => undefined);
  try {
    const r = await Promise.race([
      reply,
      (async () => {
        await control.subscribe([accepted, rejected]);
        // The reply is the answer: a PUBACK that lags behind it (or never comes) is not waited for.
        const published = control.publish(topic, JSON.stringify(body), 1);
        published.catch(() => undefined);
        await Promise.race([reply, published]);
        return reply;
      })(),
    ]);
    const parsed = parseObject(r.payload);
    if (r.topic === rejected) throw rejection(what, rejectedReply(parsed));
    return parsed;
  } finally {
    (off as (() => void) | null)?.();
    if (timer !== null) clock.clearTimeout(timer);
    await control.unsubscribe([accepted, rejected]).catch(() => undefined);
  }
}

function parseObject(payload: Buffer): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(payload.toString('utf8'));
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // falls through to the error below
  }
  throw new EdgegwError('EDGEGW_E_PROVISION_REJECTED', 'the reply is not a JSON object');
}

function rejectedReply(p: Record<string, unknown>): RejectedReply {
  return {
    statusCode: typeof p.statusCode === 'number' ? p.statusCode : null,
    errorCode: typeof p.errorCode === 'string' ? p.errorCode : 'unknown',
    // The cloud's own words, shortened: they name the template or parameter, never our key.
    errorMessage: typeof p.errorMessage === 'string' ? p.errorMessage.slice(0, 300) : '',
  };
}

function rejection(what: string, r: RejectedReply): EdgegwError {
  const status = r.statusCode === null ? '' : ` ${r.statusCode}`;
  const text = r.errorMessage === '' ? '' : `: ${r.errorMessage}`;
  const err = new EdgegwError(
    'EDGEGW_E_PROVISION_REJECTED',
    `${what} rejected (${r.errorCode}${status})${text}`,
  );
  return Object.assign(err, { rejected: r });
}

/** A string field of an accepted reply, or an error naming it. */
export function stringField(reply: Record<string, unknown>, name: string, what: string): string {
  const v = reply[name];
  if (typeof v !== 'string' || v === '') {
    throw new EdgegwError('EDGEGW_E_PROVISION_REJECTED', `the reply to ${what} has no ${name}`);
  }
  return v;
}
