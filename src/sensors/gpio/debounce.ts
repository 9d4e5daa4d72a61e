// Turns raw pin levels into accepted logical edges: activeLow inversion, then debounce (a new level
// is accepted only once it has held for `debounceMs`; shorter glitches are ignored), then the edge
// filter. Runs on the injected clock so it is tested without waiting.

import type { Clock } from '../../types.js';
import type { Bit } from './pin-port.js';

export type EdgeKind = 'rising' | 'falling' | 'both' | 'none';

export interface DebouncedInputOptions {
  readonly clock: Clock;
  readonly debounceMs: number;
  readonly activeLow: boolean;
  readonly edge: EdgeKind;
  /** The raw level when watching began. */
  readonly initialRaw: Bit;
  /** An accepted edge that matches `edge`: the new logical level and when it began. */
  readonly onEdge: (level: boolean, ts: number) => void;
  /** Re-reads the raw level when the debounce window closes (null: the read failed). */
  readonly readRaw?: () => Bit | null;
}

export class DebouncedInput {
  private readonly opts: DebouncedInputOptions;
  private accepted: boolean;
  private candidate: boolean;
  private candidateSince = 0;
  private timer: unknown = undefined;

  constructor(opts: DebouncedInputOptions) {
    this.opts = opts;
    this.accepted = this.logical(opts.initialRaw);
    this.candidate = this.accepted;
  }

  /** The accepted logical level (activeLow applied, debounced). */
  get level(): boolean {
    return this.accepted;
  }

  /** A raw level seen now (interrupt, poll or re-read). */
  raw(value: Bit, ts = this.opts.clock.now()): void {
    const v = this.logical(value);
    if (v === this.candidate) return; // no change since the last raw level
    this.candidate = v;
    this.candidateSince = ts;
    this.cancel();
    if (v === this.accepted) return; // a glitch went back before it was accepted
    if (this.opts.debounceMs <= 0) {
      this.accept();
      return;
    }
    this.timer = this.opts.clock.setTimeout(() => this.settle(), this.opts.debounceMs);
  }

  dispose(): void {
    this.cancel();
  }

  private settle(): void {
    this.timer = undefined;
    if (this.opts.readRaw !== undefined) {
      // A change the port did not report (e.g. between two polls) restarts the window.
      const raw = this.opts.readRaw();
      if (raw !== null && this.logical(raw) !== this.candidate) {
        this.raw(raw);
        return;
      }
    }
    if (this.candidate !== this.accepted) this.accept();
  }

  private accept(): void {
    this.accepted = this.candidate;
    const { edge } = this.opts;
    const wanted =
      edge === 'both' || (edge === 'rising' && this.accepted) || (edge === 'falling' && !this.accepted);
    if (wanted) this.opts.onEdge(this.accepted, this.candidateSince);
  }

  private cancel(): void {
    if (this.timer !== undefined) {
      this.opts.clock.clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  private logical(value: Bit): boolean {
    return (value === 1) !== this.opts.activeLow;
  }
}
