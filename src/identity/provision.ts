// `edgegw provision` (fleet provisioning by claim): connect with the claim certificate, obtain a
// device certificate (from a CSR made here, or AWS's key and certificate), register it through the
// template, and only then write anything: the new key and certificate at the paths uplink.key and
// uplink.cert name (via `.next` and the same commit a rotation uses), and, when the site asks for
// it (identity.thingNameAsGatewayId), the thing name into gateway.id. Every reply has a timeout; a
// failure before the writes leaves every file as it was.

import { readFile } from 'node:fs/promises';
import mqtt, { type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { parseDocument } from 'yaml';
import { audit } from '../audit.js';
import type { LoadedConfig } from '../config/load.js';
import { EdgegwError, ErrorCodes, Exit, type ErrorCode } from '../errors.js';
import { assertPrivateFile } from '../seal/keyfile.js';
import { systemClock, type Clock } from '../types.js';
import { parseBrokerUrl } from '../uplink/broker-url.js';
import { clientOptions, endClient, CONNECT_TIMEOUT_MS } from '../uplink/client.js';
import { ControlChannel } from '../uplink/control.js';
import { classifyError } from '../uplink/errors.js';
import { readKeyMaterial } from '../uplink/tls-files.js';
import { createCertificate, registerThing } from './fleet.js';
import { commitNext, discardNext, exists, pairMatches, writeNext, type IdentityPaths } from './files.js';
import { removeIfThere, replaceKeepingOwner } from './owned-file.js';

export interface ProvisionOptions {
  loaded: LoadedConfig;
  claimCert: string;
  claimKey: string;
  template: string;
  parameters: Record<string, string>;
  /** false: `$aws/certificates/create` (AWS makes the key) instead of a CSR. */
  csr: boolean;
  force: boolean;
  log: Logger;
  clock?: Clock;
}

export interface ProvisionResult {
  certificateId: string;
  thingName: string;
  fromCsr: boolean;
  cert: string;
  key: string;
  /** The identity replaced (with --force), kept as `.previous`. */
  replaced: boolean;
  /** gateway.id was rewritten in the site file (from → to); null when not asked or already equal. */
  gatewayId: { from: string; to: string } | null;
  deviceConfiguration: Record<string, string>;
}

export async function provision(o: ProvisionOptions): Promise<ProvisionResult> {
  const site = o.loaded.config;
  const clock = o.clock ?? systemClock;
  const paths: IdentityPaths = { cert: site.uplink.cert, key: site.uplink.key };
  const working = await pairMatches(paths.cert, paths.key);
  if (working && !o.force) {
    throw new EdgegwError(
      'EDGEGW_E_IDENTITY_EXISTS',
      `${paths.cert} and ${paths.key} already hold a working identity; nothing was changed ` +
        '(pass --force to replace it; the old files are kept as .previous)',
      Exit.CANTCREAT,
    );
  }
  await assertPrivateFile(o.claimKey, '--claim-key');
  const tls = {
    ca: await readFile(site.uplink.ca),
    cert: await readKeyMaterial(o.claimCert, '--claim-cert'),
    key: await readKeyMaterial(o.claimKey, '--claim-key'),
  };
  const client = await connectWithClaim(o.loaded, tls, clock);
  const control = new ControlChannel(o.log);
  try {
    await new Promise<void>((resolve) => {
      const off = control.onUp(() => {
        off();
        resolve();
      });
      control.attach(client);
    });
    const req = { control, clock, timeoutMs: site.identity.replyTimeout };
    const made = await createCertificate(req, o.csr ? { csrFor: site.gateway.id } : 'aws-key');
    const reg = await registerThing(req, o.template, made.ownershipToken, o.parameters);
    const replaced = (await exists(paths.cert)) || (await exists(paths.key));
    // Nothing was written before this point: any failure above left the files as they were.
    try {
      await writeNext(paths, made.certificatePem, made.privateKey);
      await commitNext(paths);
    } catch (err) {
      await discardNext(paths).catch(() => undefined);
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new EdgegwError(
        'EDGEGW_E_KEY_CREATE',
        `cannot write the new identity at uplink.cert ${paths.cert} and uplink.key ${paths.key} (${code}); ` +
          `certificate ${made.certificateId} is registered to thing ${reg.thingName} but unused: fix the folder and run provision again`,
        Exit.CANTCREAT,
      );
    }
    let gatewayId: ProvisionResult['gatewayId'] = null;
    let notUpdated: string | null = null;
    if (site.identity.thingNameAsGatewayId) {
      try {
        gatewayId = await setGatewayId(o.loaded.file, site.gateway.id, reg.thingName);
      } catch (err) {
        // The identity is already replaced: keep the audit entry, and say what is left to do.
        notUpdated =
          (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err));
        await removeIfThere(`${o.loaded.file}.tmp`).catch(() => undefined);
      }
    }
    audit(
      o.log,
      'provision',
      {
        certificateId: made.certificateId,
        thingName: reg.thingName,
        template: o.template,
        csr: made.fromCsr,
        certFile: paths.cert,
        keyFile: paths.key,
        replaced,
        gatewayId: gatewayId?.to ?? site.gateway.id,
        ...(notUpdated === null ? {} : { gatewayIdNotUpdated: notUpdated }),
      },
      notUpdated === null
        ? 'device identity provisioned by claim'
        : 'device identity provisioned by claim; gateway.id not updated',
      notUpdated === null ? 'info' : 'warn',
    );
    if (notUpdated !== null) {
      throw new EdgegwError(
        'EDGEGW_E_PROVISION_GATEWAY_ID',
        `identity written (certificate ${made.certificateId} of thing ${reg.thingName} at uplink.cert ` +
          `${paths.cert} and uplink.key ${paths.key}), gateway.id not updated in ${o.loaded.file}: ` +
          `${notUpdated}; set it by hand to ${reg.thingName}`,
        Exit.CANTCREAT,
      );
    }
    return {
      certificateId: made.certificateId,
      thingName: reg.thingName,
      fromCsr: made.fromCsr,
      cert: paths.cert,
      key: paths.key,
      replaced,
      gatewayId,
      deviceConfiguration: reg.deviceConfiguration,
    };
  } finally {
    control.detach();
    await endClient(client, clock);
  }
}

/** One connection with the claim certificate; its failure is classified as the uplink's are. */
function connectWithClaim(
  loaded: LoadedConfig,
  tls: { ca: Buffer; cert: Buffer; key: Buffer },
  clock: Clock,
): Promise<MqttClient> {
  const site = loaded.config;
  const { host, port, broker } = parseBrokerUrl(site.uplink.url);
  const client = mqtt.connect(
    clientOptions(host, port, {
      gatewayId: site.gateway.id,
      keepaliveMs: site.uplink.keepalive,
      protocol: site.uplink.protocol,
      ...(site.uplink.alpn === undefined ? {} : { alpn: site.uplink.alpn }),
      tls,
    }),
  );
  return new Promise((resolve, reject) => {
    let why = 'EDGEGW_E_UPLINK_CONNECT: the broker closed the connection before CONNACK';
    const fail = () => {
      void endClient(client, clock);
      reject(new EdgegwError(codeOf(why), `cannot connect with the claim certificate: ${why}`));
    };
    const timer = clock.setTimeout(() => {
      why = `EDGEGW_E_UPLINK_TIMEOUT: no CONNACK within ${CONNECT_TIMEOUT_MS / 1000} s`;
      fail();
    }, CONNECT_TIMEOUT_MS + 1000);
    client.once('connect', () => {
      clock.clearTimeout(timer);
      resolve(client);
    });
    client.on('error', (err: Error) => {
      why = classifyError(err, { now: clock.now(), host, broker });
    });
    client.once('close', () => {
      clock.clearTimeout(timer);
      fail();
    });
  });
}

/** A classified connect failure starts with its own code (EDGEGW_E_UPLINK_CLIENT_CERT: …). */
function codeOf(text: string): ErrorCode {
  const code = text.split(':')[0] ?? '';
  return code in ErrorCodes ? (code as ErrorCode) : 'EDGEGW_E_UPLINK_CONNECT';
}

/**
 * Rewrites gateway.id in the site file, keeping its comments and layout, its mode and (run as
 * root) its owner and group: an installed site.yaml is root:edgegw 0640, and the daemon must still
 * read it.
 */
async function setGatewayId(
  file: string,
  from: string,
  to: string,
): Promise<{ from: string; to: string } | null> {
  if (from === to) return null;
  const text = await readFile(file, 'utf8');
  const doc = parseDocument(text);
  doc.setIn(['gateway', 'id'], to);
  await replaceKeepingOwner(file, doc.toString());
  return { from, to };
}
