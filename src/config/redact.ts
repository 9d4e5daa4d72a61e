// The resolved configuration as YAML, for `edgegw check-config`: defaults filled in, paths absolute,
// durations and sizes in their written form. Nothing secret lives in the config itself (keys are named
// by path, never inlined), but this output is redacted defensively: URL userinfo is masked, and keys
// the schema marks `secret: true` are annotated as files whose contents are never read or shown.

import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { Document, isScalar, isSeq } from 'yaml';
import { SiteSchema } from './schema.js';
import type { LoadedConfig } from './load.js';

const SECRET_NOTE = ' secret file, contents not shown';

/** Key paths (e.g. ['uplink', 'key']) whose schema says `secret: true`. */
export function secretPaths(schema: TSchema = SiteSchema, prefix: string[] = []): string[][] {
  const out: string[][] = [];
  const props = (schema.properties ?? {}) as Record<string, TSchema>;
  for (const [key, s] of Object.entries(props)) {
    if (s.secret === true) out.push([...prefix, key]);
    if (s.properties) out.push(...secretPaths(s, [...prefix, key]));
  }
  return out;
}

/** `scheme://user:pass@host` (or `scheme:user:pass@host`, no //) → `scheme://***@host`, anywhere. */
export function maskUserinfo(text: string): string {
  return text.replace(/([A-Za-z][A-Za-z0-9+.-]*:(?:\/\/)?)[^/?#@\s]*@/g, '$1***@');
}

function maskStrings(v: unknown): unknown {
  if (typeof v === 'string') return maskUserinfo(v);
  if (Array.isArray(v)) return v.map(maskStrings);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, maskStrings(x)]));
  }
  return v;
}

export function renderResolvedConfig(loaded: LoadedConfig): string {
  const encoded = maskStrings(Value.Encode(SiteSchema, Value.Clone(loaded.config)));
  const doc = new Document(encoded);
  const profile = loaded.profile ? `; board profile ${loaded.profile.name} (${loaded.profile.file})` : '';
  doc.commentBefore = ` resolved configuration of ${loaded.file}${profile}`;
  for (const path of secretPaths()) {
    const node = doc.getIn(path, true);
    if (isScalar(node)) node.comment = SECRET_NOTE;
    // A list of key files (queue.previousKeyFiles): each item is a secret file.
    if (isSeq(node)) for (const item of node.items) if (isScalar(item)) item.comment = SECRET_NOTE;
  }
  return doc.toString({ lineWidth: 0 });
}
