// The site's private key files: the queue key, each previous queue key and the TLS key. What
// `edgegw run` refuses when its group or others may read them, and what check-config, reload and
// doctor check the same way.

import { formatPath, type KeyPath } from './issues.js';
import type { SiteConfig } from './schema.js';

export interface KeyFile {
  /** Where the site file sets it. */
  at: KeyPath;
  /** `at` as written in messages: `queue.previousKeyFiles[0]`. */
  key: string;
  path: string;
}

export function keyFiles(site: SiteConfig): KeyFile[] {
  const at: [KeyPath, string][] = [
    [['queue', 'keyFile'], site.queue.keyFile],
    ...site.queue.previousKeyFiles.map((path, i): [KeyPath, string] => [
      ['queue', 'previousKeyFiles', i],
      path,
    ]),
    [['uplink', 'key'], site.uplink.key],
  ];
  return at.map(([p, path]) => ({ at: p, key: formatPath(p), path }));
}
