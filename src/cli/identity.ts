// `edgegw provision` (fleet provisioning by claim, run before the daemon has an identity) and
// `edgegw rotate-certificate` (asks the running daemon, which rotates on its live connection).

import { loadConfig } from '../config/load.js';
import { EdgegwError, Exit } from '../errors.js';
import { provision } from '../identity/provision.js';
import { createLogger } from '../log.js';
import { rotationBoundMs } from '../identity/rotate.js';
import { RELOAD_WAIT_MS, requestRotation } from '../status/server.js';
import { TEMPLATE_PATTERN } from '../config/schema.js';
import { configPath, loadFromArg } from './config-arg.js';

export interface ProvisionArgs {
  config?: string;
  claimCert: string;
  claimKey: string;
  template: string;
  param?: string[];
  /** commander's --no-csr */
  csr: boolean;
  force?: boolean;
}

export async function provisionCommand(o: ProvisionArgs): Promise<void> {
  if (!new RegExp(TEMPLATE_PATTERN).test(o.template)) {
    throw usage(
      `--template ${JSON.stringify(o.template.slice(0, 40))} is not a template name (1..36 of 0-9A-Za-z_-)`,
    );
  }
  const parameters: Record<string, string> = {};
  for (const p of o.param ?? []) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw usage(`--param ${JSON.stringify(p.slice(0, 40))} is not key=value`);
    parameters[p.slice(0, eq)] = p.slice(eq + 1);
  }
  const loaded = await loadConfig(configPath(o.config), { identityMayBeMissing: true });
  const log = createLogger({ level: 'warn', destination: process.stderr, gateway: loaded.config.gateway.id });
  const r = await provision({
    loaded,
    claimCert: o.claimCert,
    claimKey: o.claimKey,
    template: o.template,
    parameters,
    csr: o.csr,
    force: o.force === true,
    log,
  });
  const lines = [
    `provisioned thing ${r.thingName} with template ${o.template}`,
    `  certificate ${r.certificateId} (${r.fromCsr ? 'from a CSR: the key never left this gateway' : 'key made by AWS'})`,
    `  wrote ${r.cert}`,
    `  wrote ${r.key} (mode 0600)`,
    ...(r.replaced ? ['  the replaced files are kept as .previous'] : []),
    ...(r.gatewayId === null
      ? []
      : [`  gateway.id ${r.gatewayId.from} -> ${r.gatewayId.to} in ${loaded.file}`]),
    ...Object.keys(r.deviceConfiguration).map((k) => `  deviceConfiguration ${k}`),
    // A daemon that found no identity exited 78 (configuration), which the unit's
    // RestartPreventExitStatus= keeps systemd from restarting: it needs this nudge.
    'next: start or restart the service to use it:  sudo systemctl restart edgegw',
    '  (a daemon that exited 78, e.g. for want of these files, is not restarted by systemd on its own)',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

export async function rotateCertificateCommand(o: { config?: string }): Promise<void> {
  const site = (await loadFromArg(o.config)).config;
  // The daemon runs a rotation after a reload queued ahead of it (they take turns), then the
  // rotation's own bounded time: the wait covers both, so only a daemon gone silent times out.
  const waitMs = RELOAD_WAIT_MS + rotationBoundMs(site.identity);
  const r = await requestRotation(site.status.socket, waitMs);
  if (r.rotated) {
    const lines = ['certificate rotated', ...Object.entries(r.statusDetails).map(([k, v]) => `  ${k} ${v}`)];
    process.stdout.write(`${lines.join('\n')}\n`);
    return;
  }
  process.stderr.write(`edgegw: ${r.message} [${r.code}]\n`);
  process.exitCode = Exit.FAILURE;
}

function usage(message: string): EdgegwError {
  return new EdgegwError('EDGEGW_E_USAGE', message, Exit.USAGE);
}
