// What the gateway writes to its shadow: `reported` mirrors the running configuration's settable
// part (in the shape `desired` is written in), and `reported.edgegw` says which edgegw runs, with
// which config hash, how it is doing, and what became of the last remote change (README "Fleet").

import { randomBytes } from 'node:crypto';
import type { Control } from '../uplink/control.js';
import { sameOverlay, setPath, settableView, staleReported, type Overlay } from './settable.js';

/** `reported.edgegw.change`: the last desired state acted on. */
export interface ChangeReport {
  shadowVersion: number;
  result: 'applied' | 'refused' | 'reverted' | 'proving';
  /** The key paths it changed (or would have). */
  keys: string[];
  /** Validation errors as check-config names them (`key.path: message`). */
  errors?: string[];
  /** Desired keys never applied: `path (not-settable)` / `path (local-only)`. */
  refused?: string[];
  reason?: string;
}

export interface EdgegwReport {
  version: string;
  configHash: string;
  health: Record<string, string | number | null>;
  change: ChangeReport | null;
}

/** A shadow document holds 8 KB of desired + reported: lists in the report stay short. */
const MAX_LIST = 20;
const MAX_TEXT = 300;

export class ShadowReporter {
  /** Our requests carry tokens with this prefix: replies to other clients are not ours. */
  private readonly tokenPrefix = `edgegw-${randomBytes(4).toString('hex')}-`;
  private n = 0;
  /** Bytes of the last full `reported` sent: a 413 says how much of the 8 KB it takes. */
  lastReportBytes = 0;

  constructor(
    private readonly control: Control,
    private readonly prefix: string,
  ) {}

  mine(body: Record<string, unknown>): boolean {
    return typeof body.clientToken === 'string' && body.clientToken.startsWith(this.tokenPrefix);
  }

  get(): Promise<void> {
    return this.control.publish(`${this.prefix}/get`, JSON.stringify({ clientToken: this.token() }));
  }

  /**
   * `reported`: the view (without the local-only keys), null for what the shadow holds that no
   * longer runs or is local now, and `edgegw`.
   */
  report(
    site: unknown,
    overlay: Overlay,
    localOnly: readonly string[],
    previous: unknown,
    edgegw: EdgegwReport,
  ): Promise<void> {
    const view = settableView(site, overlay, localOnly);
    const reported: Record<string, unknown> = { ...view };
    for (const path of staleReported(previous, view)) setPath(reported, path, null);
    reported.edgegw = {
      ...edgegw,
      // Which keys the site file keeps (left out above): the cloud sees why they are not reported.
      localOnly: localOnly.slice(0, MAX_LIST),
      change: edgegw.change === null ? null : shorten(edgegw.change),
    };
    this.lastReportBytes = Buffer.byteLength(JSON.stringify(reported));
    return this.update(reported);
  }

  /** `reported.edgegw.health` alone: the shadow merges it, the rest of `reported` stays. */
  reportHealth(health: EdgegwReport['health']): Promise<void> {
    return this.update({ edgegw: { health } });
  }

  private update(reported: Record<string, unknown>): Promise<void> {
    return this.control.publish(
      `${this.prefix}/update`,
      JSON.stringify({ state: { reported }, clientToken: this.token() }),
    );
  }

  private token(): string {
    this.n += 1;
    return `${this.tokenPrefix}${this.n}`;
  }
}

/** Short lists; absent fields as null, so the shadow's merge drops an older change's fields. */
function shorten(c: ChangeReport): Record<string, unknown> {
  const list = (l: string[] | undefined) => l?.slice(0, MAX_LIST).map((s) => s.slice(0, MAX_TEXT)) ?? null;
  return {
    shadowVersion: c.shadowVersion,
    result: c.result,
    keys: list(c.keys) ?? [],
    errors: list(c.errors),
    refused: list(c.refused),
    reason: c.reason?.slice(0, MAX_TEXT) ?? null,
  };
}

/** A 413: what is too large, and what to shorten (never a value of the document). */
export function tooLarge(reportBytes: number): string {
  return `report rejected: 413, the shadow document is over IoT Core's 8 KB of desired + reported (this report's reported is ${reportBytes} bytes, and it mirrors each settable value, the site file's sensors and buses included); shorten desired (set the keys no longer needed to null), or keep the long lists in the site file (list sensors in fleet.shadow.localOnly: local-only keys are not reported); not retried until the next change`;
}

/** The overlay paths `next` sets differently from `current`, or drops (key paths only, never values). */
export function changedPaths(next: Overlay, current: Overlay): string[] {
  const paths = new Set([...Object.keys(next), ...Object.keys(current)]);
  return [...paths].filter((p) => !sameOverlay({ v: next[p] ?? null }, { v: current[p] ?? null })).sort();
}
