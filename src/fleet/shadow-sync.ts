// Remote configuration through a named Device Shadow (issue 11). On every connection it gets the
// shadow; a delta makes it get the whole shadow again (a delta holds only the keys that differ,
// and an overlay is the whole settable part of `desired`). The candidate overlay goes through the
// daemon's reload path (same schema, same plan, same apply, or refused with key paths); a change
// that touches the uplink must then prove the broker reachable within fleet.shadow.revertAfter or
// the previous overlay is applied again. Only a proven change is stored on disk, so a daemon that
// dies while proving one restarts with the previous. `reported` mirrors what runs; its health
// summary is sent again every reportInterval when it changed.

import type { Logger } from 'pino';
import { audit } from '../audit.js';
import { canonicalJson } from '../config/canonical.js';
import type { ReloadOutcome } from '../reload.js';
import type { Clock } from '../types.js';
import type { Control } from '../uplink/control.js';
import { writeOverlay, type OverlayKeys, type StoredOverlay, type TriedChange } from './overlay-store.js';
import { unchangedOutcome } from './change-outcome.js';
import { changedPaths, ShadowReporter, tooLarge, type ChangeReport } from './shadow-report.js';
import {
  overlayHash,
  sameOverlay,
  splitDesired,
  touchesUplink,
  type Overlay,
  type RefusedKey,
} from './settable.js';
import { UplinkProof, type LinkProbe } from './uplink-proof.js';

const RETRY_MIN_MS = 5000;
const RETRY_MAX_MS = 300_000;

export interface ShadowSettings {
  name: string;
  localOnly: readonly string[];
  revertAfterMs: number;
  /** reported.edgegw.health is sent again this often, when it changed. */
  reportIntervalMs: number;
}

export interface ShadowHost {
  control: Control;
  thing: string;
  settings: ShadowSettings;
  dataDir: string;
  clock: Clock;
  log: Logger;
  version: string;
  /** What was stored at start (null: none, or unusable). */
  stored: StoredOverlay | null;
  /** Why the stored overlay was refused at start, or null: status shows it until a change is stored. */
  storedRefused: string | null;
  /** The queue keys the overlay is stored sealed with. */
  keys: OverlayKeys;
  /** The overlay the running configuration was loaded with. */
  overlay(): Overlay;
  /** Validates, plans and applies the site file with `overlay` (the daemon's reload path). */
  apply(overlay: Overlay): Promise<ReloadOutcome>;
  /** The site file the running configuration was loaded from, as plain data (as written). */
  siteDocument(): unknown;
  configHash(): string;
  health(): Record<string, string | number | null>;
  link(): LinkProbe;
}

/** `edgegw status` → fleet.shadow. */
export interface ShadowStatus {
  name: string;
  /** The shadow's version last seen; null before the first get. */
  version: number | null;
  lastChange: ChangeReport | null;
  /** A change that touches the uplink is being proven (it reverts when it cannot). */
  proving: boolean;
  overlay: { path: string; source: 'shadow'; shadowVersion: number }[];
  localOnly: readonly string[];
  lastError: string | null;
  /** Why the stored overlay was refused at start (EDGEGW_E_FLEET_OVERLAY), until one is stored. */
  overlayRefused: string | null;
}

export class ShadowSync {
  private readonly prefix: string;
  private readonly reporter: ShadowReporter;
  private stored: StoredOverlay | null;
  private version: number | null = null;
  private lastChange: ChangeReport | null = null;
  /** The whole desired document last acted on (overlayHash), null before the first get. */
  private seenDesired: string | null = null;
  private lastError: string | null = null;
  private overlayRefused: string | null;
  private proof: UplinkProof | null = null;
  /** Gets are handled one at a time, in order. */
  private work: Promise<void> = Promise.resolve();
  private removers: (() => void)[] = [];
  private stopped = false;
  private retryMs = 0;
  private retryTimer: unknown = null;
  private healthTimer: unknown = null;
  /** The health last sent (canonical JSON); null before the first report. */
  private sentHealth: string | null = null;

  constructor(private readonly host: ShadowHost) {
    this.prefix = `$aws/things/${host.thing}/shadow/name/${host.settings.name}`;
    this.stored = host.stored;
    this.overlayRefused = host.storedRefused;
    this.reporter = new ShadowReporter(host.control, this.prefix);
    const t = host.stored?.tried;
    if (t !== null && t !== undefined)
      this.lastChange = { shadowVersion: t.shadowVersion, result: t.result, keys: [], reason: t.reason };
  }

  async start(): Promise<void> {
    const p = this.prefix;
    this.removers.push(
      this.host.control.onMessage((topic, payload) => this.message(topic, payload)),
      this.host.control.onUp(() => this.requestGet()),
    );
    await this.host.control.subscribe([
      `${p}/get/accepted`,
      `${p}/get/rejected`,
      `${p}/update/delta`,
      `${p}/update/accepted`,
      `${p}/update/rejected`,
    ]);
    if (this.host.control.connected) this.requestGet();
    this.scheduleHealth();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const r of this.removers.splice(0)) r();
    if (this.retryTimer !== null) this.host.clock.clearTimeout(this.retryTimer);
    if (this.healthTimer !== null) this.host.clock.clearTimeout(this.healthTimer);
    // A change still being proven is not stored: the next start runs the previous overlay.
    this.proof?.cancel();
    await this.work;
  }

  status(): ShadowStatus {
    const v = this.stored?.shadowVersion ?? 0;
    return {
      name: this.host.settings.name,
      version: this.version,
      lastChange: this.lastChange,
      proving: this.proof !== null,
      overlay: Object.keys(this.host.overlay())
        .sort()
        .map((path) => ({ path, source: 'shadow', shadowVersion: v })),
      localOnly: this.host.settings.localOnly,
      lastError: this.lastError,
      overlayRefused: this.overlayRefused,
    };
  }

  /**
   * The health summary goes stale between changes: every reportInterval it is sent again, alone,
   * when it changed since the last report and the connection is up (a report that cannot leave is
   * skipped, not queued).
   */
  private scheduleHealth(): void {
    if (this.stopped) return;
    this.healthTimer = this.host.clock.setTimeout(() => {
      this.healthTimer = null;
      this.work = this.work.then(() => this.refreshHealth());
      this.scheduleHealth();
    }, this.host.settings.reportIntervalMs);
  }

  private async refreshHealth(): Promise<void> {
    if (this.stopped || this.sentHealth === null || !this.host.control.connected) return;
    const health = this.host.health();
    const text = canonicalJson(health);
    if (text === this.sentHealth) return;
    try {
      await this.reporter.reportHealth(health);
      this.sentHealth = text;
    } catch (err) {
      this.fail(`health report not sent (${(err as Error).message})`);
    }
  }

  private requestGet(): void {
    if (this.stopped) return;
    this.reporter.get().catch((err: unknown) => this.fail(`get not sent (${(err as Error).message})`));
  }

  private message(topic: string, payload: Buffer): void {
    if (!topic.startsWith(`${this.prefix}/`)) return;
    const what = topic.slice(this.prefix.length + 1);
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
    } catch {
      return this.fail(`${what}: a reply that is not JSON`);
    }
    if (what === 'update/delta') return this.requestGet();
    if (what === 'get/accepted' || what === 'get/rejected') {
      if (!this.reporter.mine(body)) return;
      // 404: no shadow yet; the first report creates it.
      if (what === 'get/rejected' && body.code !== 404) {
        this.retryLater(body.code);
        return this.fail(`get rejected: ${String(body.code)} ${String(body.message)}`);
      }
      this.retryMs = 0;
      this.lastError = null;
      const state = (what === 'get/accepted' ? body.state : {}) as Record<string, unknown> | undefined;
      const version = typeof body.version === 'number' ? body.version : 0;
      this.work = this.work.then(() => this.consider(state?.desired ?? {}, state?.reported ?? {}, version));
      return;
    }
    if (what === 'update/rejected' && this.reporter.mine(body)) {
      // Too large is not retried: the same document would be refused again until desired shrinks.
      if (body.code === 413) return this.fail(tooLarge(this.reporter.lastReportBytes));
      this.retryLater(body.code);
      this.fail(`report rejected: ${String(body.code)} ${String(body.message)}`);
    }
  }

  /** 429 (too many requests) and 5xx pass: get again later, backing off; other codes will not. */
  private retryLater(code: unknown): void {
    if (typeof code !== 'number' || (code !== 429 && code < 500) || this.retryTimer !== null) return;
    this.retryMs = Math.min(RETRY_MAX_MS, Math.max(RETRY_MIN_MS, this.retryMs * 2));
    this.retryTimer = this.host.clock.setTimeout(() => {
      this.retryTimer = null;
      this.requestGet();
    }, this.retryMs);
  }

  /** A whole desired document: apply its settable part unless it runs already or was refused. */
  private async consider(desired: unknown, reported: unknown, version: number): Promise<void> {
    if (this.stopped) return;
    this.version = version;
    const { overlay, refused } = splitDesired(desired, this.host.settings.localOnly);
    const refusedPaths = refused.map((r) => `${r.path} (${r.why})`);
    const hash = overlayHash(overlay);
    const tried = this.stored?.tried ?? null;
    const current = this.host.overlay();
    // A get comes on every connection and after our own reports: only a new desired document is
    // a change to act on, report and audit.
    const digest = overlayHash({ desired });
    const first = this.seenDesired === null;
    const fresh = digest !== this.seenDesired;
    this.seenDesired = digest;
    if (sameOverlay(overlay, current) || tried?.hash === hash) {
      if (fresh) this.nothingToApply(version, refused, tried?.hash === hash ? tried : null, first, reported);
      return this.report(reported);
    }

    const outcome = await this.host.apply(overlay);
    // A stop under way refuses every reload: that says nothing of the change.
    if (this.stopped) return;
    const keys = outcome.changed;
    if (!outcome.applied) {
      const errors = outcome.errors.map(keyMessage);
      const reason =
        outcome.restartNeeded.length > 0
          ? `only a restart can change ${outcome.restartNeeded.join(', ')}`
          : outcome.message;
      await this.remember({ hash, shadowVersion: version, result: 'refused', reason }, current);
      this.lastChange = {
        shadowVersion: version,
        result: 'refused',
        keys: [],
        errors,
        refused: refusedPaths,
        reason,
      };
      audit(
        this.host.log,
        'shadow-refused',
        {
          shadow: this.host.settings.name,
          shadowVersion: version,
          keys: changedPaths(overlay, current),
          refused: refused.map((r) => r.path),
          errors: errors.length,
          errorKeys: errors.map((e) => e.split(':')[0] ?? e),
          restartNeeded: outcome.restartNeeded,
        },
        'remote configuration refused',
        'warn',
      );
      return this.report(reported);
    }
    if (touchesUplink(keys)) {
      this.lastChange = { shadowVersion: version, result: 'proving', keys, refused: refusedPaths };
      const proof = new UplinkProof(
        this.host.clock,
        () => this.host.link(),
        this.host.settings.revertAfterMs,
      );
      this.proof = proof;
      const proven = await proof.run();
      this.proof = null;
      if (proven === 'cancelled') return;
      if (proven !== 'proven') {
        const back = await this.host.apply(current);
        const reason = `the broker was not reached within ${this.host.settings.revertAfterMs / 1000}s of the change (${proven.failed}); the previous configuration was applied again${back.applied ? '' : ` but refused: ${back.message}`}`;
        await this.remember({ hash, shadowVersion: version, result: 'reverted', reason }, current);
        this.lastChange = { shadowVersion: version, result: 'reverted', keys, refused: refusedPaths, reason };
        audit(
          this.host.log,
          'shadow-reverted',
          {
            shadow: this.host.settings.name,
            shadowVersion: version,
            keys,
            refused: refused.map((r) => r.path),
          },
          'remote configuration reverted',
          'warn',
        );
        this.host.log.warn({ code: 'EDGEGW_E_FLEET_REVERTED', shadowVersion: version, keys }, reason);
        return this.report(reported);
      }
    }
    await this.remember(null, overlay);
    this.lastChange = { shadowVersion: version, result: 'applied', keys, refused: refusedPaths };
    audit(
      this.host.log,
      'shadow-change',
      {
        shadow: this.host.settings.name,
        shadowVersion: version,
        keys,
        refused: refused.map((r) => r.path),
        configHash: outcome.hash,
      },
      outcome.message,
    );
    return this.report(reported);
  }

  /** A new desired document whose settable part runs already (or was refused before). */
  private nothingToApply(
    version: number,
    refused: RefusedKey[],
    tried: TriedChange | null,
    first: boolean,
    reported: unknown,
  ): void {
    const { change, audited } = unchangedOutcome({ version, refused, tried, first, reported });
    if (change !== null) this.lastChange = change;
    if (!audited) return;
    audit(
      this.host.log,
      'shadow-refused',
      {
        shadow: this.host.settings.name,
        shadowVersion: version,
        keys: [],
        refused: refused.map((r) => r.path),
        errors: 0,
        errorKeys: [],
        restartNeeded: [],
      },
      'remote configuration refused',
      'warn',
    );
  }

  /** Stores what runs (and what was tried): a restart, even offline, comes back to it. */
  private async remember(tried: TriedChange | null, overlay: Overlay): Promise<void> {
    const keep = tried === null && this.version !== null ? this.version : (this.stored?.shadowVersion ?? 0);
    const next: StoredOverlay = {
      shadow: this.host.settings.name,
      shadowVersion: keep,
      appliedAt: tried === null ? this.host.clock.now() : (this.stored?.appliedAt ?? this.host.clock.now()),
      overlay,
      tried,
    };
    try {
      await writeOverlay(this.host.dataDir, next, this.host.keys);
      this.stored = next;
      this.overlayRefused = null;
    } catch (err) {
      this.fail(
        `the overlay could not be stored (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      );
    }
  }

  private async report(reported: unknown): Promise<void> {
    if (this.stopped) return;
    try {
      const site = this.host.siteDocument();
      const health = this.host.health();
      await this.reporter.report(site, this.host.overlay(), this.host.settings.localOnly, reported, {
        version: this.host.version,
        configHash: this.host.configHash(),
        health,
        change: this.lastChange,
      });
      this.sentHealth = canonicalJson(health);
    } catch (err) {
      this.fail(`report not sent (${(err as Error).message})`);
    }
  }

  private fail(why: string): void {
    this.lastError = why;
    this.host.log.warn({ code: 'EDGEGW_E_FLEET_SHADOW', shadow: this.host.settings.name }, `shadow: ${why}`);
  }
}

/** `FILE:LINE:COL: key: message` → `key: message`: a file position means nothing in the shadow. */
function keyMessage(line: string): string {
  const m = /^.*?:\d+:\d+: (.*)$/s.exec(line);
  return m?.[1] ?? line;
}
