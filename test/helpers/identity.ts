// A site for the identity tests: the IoT Core provisioning simulator on the site's broker, a claim
// certificate from the site's CA, and site.yaml pointing uplink.cert/key at `id/` (empty at first).

import { mkdir, readFile, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { issueClientCertificate } from '../../src/demo/pki.js';
import {
  startProvisioningSim,
  type ProvisioningSim,
  type SimTemplate,
} from '../../src/demo/iotcore-sim/provisioning.js';
import { makeSite, type SiteOptions, type TestSite } from './site.js';

export interface IdentitySite {
  site: TestSite;
  sim: ProvisioningSim;
  claimCert: string;
  claimKey: string;
  /** Where site.yaml's uplink.cert and uplink.key point. */
  cert: string;
  key: string;
  cleanup(): Promise<void>;
}

export async function makeIdentitySite(
  templates: Record<string, SimTemplate>,
  opts: SiteOptions & { freshIdentity?: boolean } = {},
): Promise<IdentitySite> {
  const site = await makeSite(opts);
  const sim = startProvisioningSim(site.broker, site.pki, templates);
  const claim = issueClientCertificate(site.pki, 'claim-fleet');
  const claimCert = join(site.dir, 'pki', 'claim.pem');
  const claimKey = join(site.dir, 'pki', 'claim.key');
  await writeFile(claimCert, claim.cert);
  await writeFile(claimKey, claim.key, { mode: 0o600 });
  await chmod(claimKey, 0o600);
  let cert = join(site.dir, 'pki', 'client.pem');
  let key = join(site.dir, 'pki', 'client.key');
  if (opts.freshIdentity !== false) {
    await mkdir(join(site.dir, 'id'), { mode: 0o700 });
    const yaml = await readFile(site.configFile, 'utf8');
    await writeFile(
      site.configFile,
      yaml
        .replace('cert: pki/client.pem', 'cert: id/device.pem')
        .replace('key: pki/client.key', 'key: id/device.key'),
    );
    cert = join(site.dir, 'id', 'device.pem');
    key = join(site.dir, 'id', 'device.key');
  }
  return {
    site,
    sim,
    claimCert,
    claimKey,
    cert,
    key,
    cleanup: async () => {
      sim.stop();
      await site.cleanup();
    },
  };
}
