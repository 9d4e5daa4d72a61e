// Certificate rotation (identity issue): a new key and CSR made here, the new certificate from
// CreateCertificateFromCsr on the uplink's own connection (then RegisterThing, when
// identity.rotation.template names a template: at AWS a certificate stays PENDING_ACTIVATION until
// a template registers it), then the proof: the uplink reconnects with the new certificate (same
// client id, so the old session ends) and only a CONNACK followed by an acknowledged publish lets
// the new files be committed (files.ts; the old ones stay as `.previous`). Any failure or timeout
// puts the uplink back on the old certificate, removes the `.next` files and throws
// EDGEGW_E_ROTATION saying why. The queue is never touched: what was in flight when the connection
// changed is resent from it, as on any reconnect, and nothing is re-sealed.

import type { Logger } from 'pino';
import { audit } from '../audit.js';
import type { SiteConfig } from '../config/schema.js';
import { EdgegwError } from '../errors.js';
import type { Clock } from '../types.js';
import type { Control } from '../uplink/control.js';
import type { UplinkSettings, UplinkState } from '../uplink/uplink.js';
import { certificateInfo } from '../uplink/certificate.js';
import { createCertificate, registerThing, type NewIdentity } from './fleet.js';
import { commitNext, discardNext, writeNext, type IdentityPaths } from './files.js';

/** What a rotation needs of the uplink: its connection and a way to reconnect with other TLS files. */
export interface RotatableUplink {
  readonly control: Control;
  reconfigure(next: UplinkSettings): { reconnected: boolean };
  state(): UplinkState;
}

export interface RotationDeps {
  gatewayId: string;
  uplink: RotatableUplink;
  /** The uplink's running settings; their `tls` is the material to return to. */
  settings: UplinkSettings;
  paths: IdentityPaths;
  identity: SiteConfig['identity'];
  log: Logger;
  clock: Clock;
  /** Aborted when the daemon stops: the rotation gives up at once (and rolls back). */
  signal?: AbortSignal;
  /** The new material is committed to disk and in use (the daemon keeps it for reloads). */
  committed?: (tls: UplinkSettings['tls']) => void;
}

/** IoT Core: at most one CONNECT per second per client id (../shared/IOTCORE-APIS.md), with a margin. */
const CONNECT_SPACING_MS = 1100;
/** How often the proof looks at the uplink's state for a refused connection. */
const POLL_MS = 50;
/** The steps between the waits: the new RSA key (seconds on a small board), the files, the rollback. */
const STEPS_MS = 10_000;

/**
 * The longest a rotation takes once it runs: each reply (two with a template), the CONNECT spacing,
 * the proof, and its own steps. Every wait in it has its timeout, so it always ends within this.
 */
export function rotationBoundMs(identity: SiteConfig['identity']): number {
  const replies = identity.rotation.template === undefined ? 1 : 2;
  return replies * identity.replyTimeout + CONNECT_SPACING_MS + identity.rotation.proofTimeout + STEPS_MS;
}

/** Rotates the device certificate; resolves with job statusDetails, or throws after rolling back. */
export async function rotateCertificate(deps: RotationDeps): Promise<Record<string, string>> {
  const { uplink, paths, identity, log, clock } = deps;
  const template = identity.rotation.template;
  if (!uplink.control.connected) {
    throw failure('the uplink is not connected (the new certificate is asked for on its connection)');
  }
  await discardNext(paths);
  const req = {
    control: uplink.control,
    clock,
    timeoutMs: identity.replyTimeout,
    ...(deps.signal === undefined ? {} : { signal: deps.signal }),
  };
  let made: NewIdentity;
  try {
    made = await createCertificate(req, { csrFor: deps.gatewayId });
    if (template !== undefined) {
      const reg = await registerThing(req, template, made.ownershipToken, identity.rotation.parameters);
      if (reg.thingName !== deps.gatewayId) {
        throw new EdgegwError(
          'EDGEGW_E_PROVISION_REJECTED',
          `template ${template} registered the certificate to thing ${reg.thingName}, not ${deps.gatewayId}`,
        );
      }
    }
  } catch (err) {
    // Nothing changed yet: the connection and the files are the old ones.
    throw rolledBack(deps, reason(err), err);
  }

  const tls = {
    ...deps.settings.tls,
    cert: Buffer.from(made.certificatePem),
    key: Buffer.from(made.privateKey),
  };
  try {
    await writeNext(paths, made.certificatePem, made.privateKey);
    await prove(deps, tls);
  } catch (err) {
    uplink.reconfigure(deps.settings);
    await discardNext(paths).catch(() => undefined);
    throw rolledBack(deps, reason(err), err);
  }
  try {
    await commitNext(paths);
  } catch (err) {
    // The files may be half renamed; the next start settles them (recoverIdentity). Run on the old.
    uplink.reconfigure(deps.settings);
    throw rolledBack(deps, `the new files could not be committed (${reason(err)})`, err);
  }
  deps.committed?.(tls);
  const info = certificateInfo(made.certificatePem, clock.now());
  const details: Record<string, string> = {
    certificateId: made.certificateId,
    notAfter: new Date(info.notAfter).toISOString(),
    previous: `${paths.cert}.previous`,
    ...(template === undefined ? {} : { template }),
  };
  audit(log, 'certificate-rotation', { result: 'rotated', ...details }, 'device certificate rotated');
  return details;
}

/**
 * Reconnects on `tls`; resolves once a CONNACK came and a QoS 1 publish was acknowledged on it.
 * The proof is armed only once the reconnect with `tls` has been issued: the reconfigure ends the
 * running connection and every later one is made from the new settings (reloads wait for the
 * rotation), so a connection that comes up before it (the old certificate's, back after a drop
 * during the CONNECT spacing wait) proves nothing and is not listened to.
 */
function prove(deps: RotationDeps, tls: UplinkSettings['tls']): Promise<void> {
  const { uplink, clock, identity } = deps;
  const control = uplink.control;
  const topic = identity.rotation.proofTopic.replaceAll('{gateway}', deps.gatewayId);
  const payload = JSON.stringify({ gw: deps.gatewayId, rotated: clock.now() });
  return new Promise<void>((resolve, reject) => {
    let done = false;
    let poll: unknown = null;
    let offUp = (): void => undefined;
    const finish = (err?: Error): void => {
      if (done) return;
      done = true;
      offUp();
      clock.clearTimeout(deadline);
      if (poll !== null) clock.clearTimeout(poll);
      if (err === undefined) resolve();
      else reject(err);
    };
    const seconds = Math.round(identity.rotation.proofTimeout / 100) / 10;
    const deadline = clock.setTimeout(
      () => finish(new Error(`no CONNACK and PUBACK on the new certificate within ${seconds} s`)),
      identity.rotation.proofTimeout,
    );
    // A connection refused (or closed after CONNACK) on the new certificate puts the uplink in backoff.
    const check = (): void => {
      const s = uplink.state();
      if (s.state === 'backoff') {
        finish(new Error(`the broker refused the new certificate (${s.lastError ?? 'connection closed'})`));
        return;
      }
      if (s.state === 'offline' || deps.signal?.aborted === true) {
        finish(new Error('the daemon is stopping'));
        return;
      }
      poll = clock.setTimeout(check, POLL_MS);
    };
    const onNewConnection = (): void => {
      control.publish(topic, payload, 1).then(
        () => finish(),
        (err: unknown) => finish(new Error(`the proof publish to ${topic} failed (${reason(err)})`)),
      );
    };
    // IoT Core refuses a second CONNECT for a client id within a second of the last (CONNACK 3):
    // the new certificate's connection waits until the running one is that old.
    const s = uplink.state();
    const wait = s.state === 'connected' ? Math.max(0, s.since + CONNECT_SPACING_MS - clock.now()) : 0;
    poll = clock.setTimeout(() => {
      poll = null;
      if (done) return;
      const { reconnected } = uplink.reconfigure({ ...deps.settings, tls });
      if (!reconnected) {
        finish(new Error('the uplink did not reconnect with the new certificate'));
        return;
      }
      // The old connection has ended: the next CONNACK (with its subscriptions) is the new certificate's.
      offUp = control.onUp(onNewConnection);
      check();
    }, wait);
  });
}

function rolledBack(deps: RotationDeps, why: string, cause: unknown): EdgegwError {
  audit(
    deps.log,
    'certificate-rotation',
    { result: 'rolled-back', reason: why },
    'certificate rotation failed; still on the previous certificate',
    'warn',
  );
  return failure(`${why}; the gateway stays on its previous certificate`, cause);
}

function failure(why: string, cause?: unknown): EdgegwError {
  return new EdgegwError(
    'EDGEGW_E_ROTATION',
    `certificate rotation failed: ${why}`,
    1,
    cause === undefined ? undefined : { cause },
  );
}

function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
