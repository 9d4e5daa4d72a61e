// A SIMULATOR of a remote AWS service, for the demo and the tests: AWS IoT fleet provisioning's MQTT
// API on the test broker (broker.ts), backed by the test CA (pki.ts). It follows the shapes of AWS's
// "Device provisioning MQTT API" page: `$aws/certificates/create/json` (empty request) and
// `$aws/certificates/create-from-csr/json` `{certificateSigningRequest}`, each answered on
// `…/accepted` (`{certificateId, certificatePem, privateKey?, certificateOwnershipToken}`) or
// `…/rejected` (`{statusCode, errorCode, errorMessage}`), and
// `$aws/provisioning-templates/<name>/provision/json` `{certificateOwnershipToken, parameters}` →
// `{deviceConfiguration, thingName}`. As at AWS, a new certificate is PENDING_ACTIVATION until a
// template registers it (ACTIVE, or INACTIVE if the template says so), an ownership token works
// once and for an hour, and the broker hangs up on a certificate that is not ACTIVE. Not simulated:
// CBOR, IAM policies and template bodies (a test gives each template's outcome as code),
// pre-provisioning Lambda hooks, replies reaching only the requesting connection (aedes delivers
// them to every subscriber of the reply topic), certificate deletion after the hour.

import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import type tls from 'node:tls';
import type { TlsBroker } from '../broker.js';
import { issueClientCertificate, signCertificateRequest, type DemoPki } from '../pki.js';

export interface Rejection {
  statusCode: number;
  errorCode: string;
  errorMessage: string;
}

/** What RegisterThing does with one template (the test's stand-in for a template body). */
export interface SimTemplate {
  /** The thing name from the request's parameters; default `parameters.SerialNumber`, else `thing-<n>`. */
  thingName?: (parameters: Record<string, string>) => string;
  deviceConfiguration?: Record<string, string>;
  /** Refuse the registration (a pre-provisioning hook that says no). */
  reject?: Rejection;
  /** The certificate's status once registered (the template's certificate resource). */
  certificateStatus?: 'ACTIVE' | 'INACTIVE';
  /** Called as the registration is accepted, before the reply goes out (a test's exact moment). */
  onRegistered?: (cert: SimCertificate) => void;
  /** Never answer RegisterThing (a reply lost after CreateCertificate was answered). */
  silent?: boolean;
}

/**
 * `silent`: no reply at all; `throttle`: every request rejected with 429, as when a quota is hit;
 * `mismatched`: a CSR is answered with a certificate for another key (a reply a gateway must refuse).
 */
export type SimMode = 'normal' | 'silent' | 'throttle' | 'mismatched';

export interface SimCertificate {
  certificateId: string;
  status: 'PENDING_ACTIVATION' | 'ACTIVE' | 'INACTIVE';
  thingName: string | null;
  fromCsr: boolean;
}

export interface ProvisioningSim {
  mode: SimMode;
  /** Every certificate this simulator made, in order. */
  readonly certificates: readonly SimCertificate[];
  /** Request topics received, in order. */
  readonly requests: readonly string[];
  /**
   * Every client TLS connection the broker saw while this simulator ran, in order: the SHA-256 of
   * its certificate (a certificateId for the ones made here) and whether it was refused.
   */
  readonly connections: readonly { certificateId: string; refused: boolean }[];
  /** The broker refuses this certificate (PEM, or a certificateId) from now on, as if deactivated. */
  deactivate(certificate: string): void;
  /** Removes its hooks from the broker (the broker then accepts every certificate again). */
  stop(): void;
}

const TOKEN_MS = 3_600_000;
export const THROTTLED: Rejection = {
  statusCode: 429,
  errorCode: 'ThrottlingException',
  errorMessage: 'Rate exceeded',
};

export function startProvisioningSim(
  broker: TlsBroker,
  pki: DemoPki,
  templates: Record<string, SimTemplate>,
): ProvisioningSim {
  const certificates: SimCertificate[] = [];
  const byId = new Map<string, SimCertificate>();
  const tokens = new Map<string, { certificateId: string; expires: number }>();
  const requests: string[] = [];
  const connections: { certificateId: string; refused: boolean }[] = [];
  const deactivated = new Set<string>();
  let things = 0;

  const reply = (topic: string, body: object): void => {
    broker.aedes.publish(
      {
        cmd: 'publish',
        topic,
        payload: Buffer.from(JSON.stringify(body)),
        qos: 0,
        retain: false,
        dup: false,
      },
      () => undefined,
    );
  };
  const rejected = (request: string, r: Rejection) => reply(`${request}/rejected`, r);

  const newCertificate = (pem: string, fromCsr: boolean): { id: string; token: string } => {
    const id = certificateId(pem);
    const cert: SimCertificate = {
      certificateId: id,
      status: 'PENDING_ACTIVATION',
      thingName: null,
      fromCsr,
    };
    certificates.push(cert);
    byId.set(id, cert);
    const token = randomBytes(24).toString('base64');
    tokens.set(token, { certificateId: id, expires: Date.now() + TOKEN_MS });
    return { id, token };
  };

  const handle = (topic: string, payload: Buffer): void => {
    if (topic === '$aws/certificates/create/json') {
      const made = issueClientCertificate(pki, 'provisioned-device');
      const { id, token } = newCertificate(made.cert, false);
      reply(`${topic}/accepted`, {
        certificateId: id,
        certificatePem: made.cert,
        privateKey: made.key,
        certificateOwnershipToken: token,
      });
      return;
    }
    if (topic === '$aws/certificates/create-from-csr/json') {
      const csr = field(payload, 'certificateSigningRequest');
      let pem: string;
      try {
        if (csr === undefined) throw new Error('missing');
        pem =
          sim.mode === 'mismatched'
            ? issueClientCertificate(pki, 'someone-else').cert
            : signCertificateRequest(pki, csr);
      } catch {
        return rejected(topic, {
          statusCode: 400,
          errorCode: 'InvalidCertificateSigningRequest',
          errorMessage: 'The certificate signing request is not valid',
        });
      }
      const { id, token } = newCertificate(pem, true);
      reply(`${topic}/accepted`, {
        certificateId: id,
        certificatePem: pem,
        certificateOwnershipToken: token,
      });
      return;
    }
    const m = /^\$aws\/provisioning-templates\/([^/]+)\/provision\/json$/.exec(topic);
    if (m === null) return;
    const template = templates[m[1]!];
    if (template === undefined) {
      return rejected(topic, {
        statusCode: 404,
        errorCode: 'ResourceNotFoundException',
        errorMessage: `Template ${m[1]!} not found`,
      });
    }
    const tokenText = field(payload, 'certificateOwnershipToken');
    const token = tokenText === undefined ? undefined : tokens.get(tokenText);
    if (tokenText !== undefined) tokens.delete(tokenText);
    const cert = token === undefined ? undefined : byId.get(token.certificateId);
    if (token === undefined || cert === undefined || token.expires < Date.now()) {
      return rejected(topic, {
        statusCode: 400,
        errorCode: 'InvalidCertificateOwnershipToken',
        errorMessage: 'The certificate ownership token is not valid',
      });
    }
    if (template.reject !== undefined) return rejected(topic, template.reject);
    if (template.silent === true) return;
    const parameters = parametersOf(payload);
    const thingName = template.thingName?.(parameters) ?? parameters.SerialNumber ?? `thing-${(things += 1)}`;
    cert.status = template.certificateStatus ?? 'ACTIVE';
    cert.thingName = thingName;
    template.onRegistered?.(cert);
    reply(`${topic}/accepted`, { deviceConfiguration: template.deviceConfiguration ?? {}, thingName });
  };

  const sim: ProvisioningSim = {
    mode: 'normal',
    certificates,
    requests,
    connections,
    deactivate: (certificate) => {
      const id = /^[0-9a-f]{64}$/.test(certificate) ? certificate : certificateId(certificate);
      deactivated.add(id);
      const known = byId.get(id);
      if (known !== undefined) known.status = 'INACTIVE';
    },
    stop: () => {
      broker.aedes.off('publish', listener);
      broker.refuseClients(null);
    },
  };
  const listener = (packet: { topic: string; payload: Buffer | string }, client: unknown): void => {
    if (client === null || !packet.topic.startsWith('$aws/')) return;
    if (packet.topic.endsWith('/accepted') || packet.topic.endsWith('/rejected')) return;
    requests.push(packet.topic);
    if (sim.mode === 'silent') return;
    if (sim.mode === 'throttle') return rejected(packet.topic, THROTTLED);
    handle(packet.topic, Buffer.from(packet.payload));
  };
  broker.aedes.on('publish', listener);
  // IoT Core accepts only ACTIVE certificates; the ones this simulator did not make (the site's
  // own, claim certificates) pass.
  broker.refuseClients((peer: tls.PeerCertificate) => {
    const id = fingerprintId(peer.raw);
    const known = byId.get(id);
    const refused = deactivated.has(id) || (known !== undefined && known.status !== 'ACTIVE');
    connections.push({ certificateId: id, refused });
    return refused;
  });
  return sim;
}

/** AWS certificate ids are 64 hex digits; here the SHA-256 of the DER. */
export function certificateId(pem: string): string {
  return fingerprintId(new X509Certificate(pem).raw);
}

function fingerprintId(der: Buffer): string {
  return createHash('sha256').update(der).digest('hex');
}

function body(payload: Buffer): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(payload.toString('utf8'));
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function field(payload: Buffer, name: string): string | undefined {
  const v = body(payload)[name];
  return typeof v === 'string' ? v : undefined;
}

function parametersOf(payload: Buffer): Record<string, string> {
  const p = body(payload).parameters;
  if (typeof p !== 'object' || p === null) return {};
  return Object.fromEntries(
    Object.entries(p as Record<string, unknown>).filter(
      (e): e is [string, string] => typeof e[1] === 'string',
    ),
  );
}
