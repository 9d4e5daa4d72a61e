// What the uplink sends next (DESIGN.md §1, §2.2): records pulled from the source through two
// cursors, each with its own packer, so a message always holds whole records in seq order.
// - The live cursor starts at the newest record committed when the connection was attempted and
//   follows new commits (onAppend); its messages go first, so live readings do not wait behind a
//   backlog — but never twice in a row while a backlog message is ready: when the publish quota is
//   what binds, live messages would otherwise take every slot and the backlog would never drain.
//   Live records keep accumulating in the queue meanwhile, so the next live message carries them
//   all (latency stays within a publish slot or two).
// - The backlog cursor walks (from, split]: from the lowest unacknowledged seq up to where the
//   live cursor started, with the capacity live records leave.
// The two regions never overlap, so no record is pulled twice in a session, and every seq is in
// one of them, so none is skipped. After a disconnect both rewind to the lowest seq not known to be
// acknowledged (at-least-once); the next connect splits again at the newest record.

import type { OpenRecord, RecordSource } from '../types.js';
import { MessagePacker, type Compression, type PackedMessage } from './wire.js';

/** Records asked of the source per pull: enough to fill messages, few enough to bound memory. */
export const PULL_RECORDS = 32;

export interface NextMessage {
  msg: PackedMessage;
  live: boolean;
}

export class Feed {
  private livePacker: MessagePacker;
  private backlogPacker: MessagePacker;
  private readonly liveReady: PackedMessage[] = [];
  private readonly backlogReady: PackedMessage[] = [];
  /** Every seq ≤ from was acknowledged (or is in flight and will be pulled again after a rewind). */
  private from = 0;
  /** The backlog region still to pull: seqs in (after, until]; null when there is none. */
  private backlog: { after: number; until: number } | null = null;
  /** Highest seq the live cursor handed out; it pulls seqs above it. */
  private live = 0;
  /** Bumped by every onAppend: a short live pull ends the live cursor's turn only if none came since. */
  private appends = 0;
  private liveMore = false;
  /** The last message published was live: a ready backlog message goes next. */
  private lastLive = false;
  /** Bumped by rewind: a pull that was waiting on the source when it happened is dropped. */
  private gen = 0;
  /** Stopping: only live records up to this seq are served; the rest stays queued (kept for rewind). */
  private tailUntil: number | null = null;

  constructor(
    private readonly source: RecordSource,
    private readonly gatewayId: string,
    payloadBytes: number,
    private compression: Compression = 'none',
  ) {
    this.livePacker = new MessagePacker(gatewayId, payloadBytes, compression);
    this.backlogPacker = new MessagePacker(gatewayId, payloadBytes, compression);
  }

  /** At each connect attempt: backlog = (from, newest], live cursor after the newest record. */
  restart(): void {
    this.gen++;
    const newest = Math.max(this.from, this.source.lastSeq?.() ?? this.from);
    this.backlog = newest > this.from ? { after: this.from, until: newest } : null;
    this.live = newest;
    this.liveMore = true;
    this.tailUntil = null;
  }

  /**
   * A clean stop: serve only the live tail, the records committed up to now that the live cursor has
   * not sent, and only if at most `max` of them wait (a caught-up uplink's last commit or two).
   * Returns whether there is such a tail; a longer one, like the backlog, simply stays queued.
   */
  tail(max: number): boolean {
    const newest = this.source.lastSeq?.() ?? this.live;
    const unsent = Math.min(
      this.live + 1,
      this.liveReady[0]?.seqs[0] ?? Infinity,
      this.livePacker.pendingSeqs[0] ?? Infinity,
    );
    const ok = newest - unsent + 1 <= max;
    this.tailUntil = ok ? newest : -1;
    return ok && (newest >= unsent || this.liveReady.length > 0);
  }

  /**
   * Everything not acknowledged counts as not sent: drops what is packed and not yet published and
   * moves `from` down to the lowest seq in flight, packed, or never pulled.
   */
  rewind(lowestInFlight: number): void {
    let low = Math.min(lowestInFlight, this.backlog === null ? this.live + 1 : this.backlog.after + 1);
    for (const m of [...this.liveReady, ...this.backlogReady]) low = Math.min(low, m.seqs[0] ?? Infinity);
    low = Math.min(
      low,
      this.livePacker.pendingSeqs[0] ?? Infinity,
      this.backlogPacker.pendingSeqs[0] ?? Infinity,
    );
    this.from = low - 1;
    this.gen++;
    this.backlog = null;
    this.live = this.from;
    this.liveMore = false;
    this.liveReady.length = 0;
    this.backlogReady.length = 0;
    this.livePacker.reset();
    this.backlogPacker.reset();
  }

  /**
   * A reload changed the message size or the compression: what is packed but not yet published is
   * dropped and its records pulled again into messages of the new kind. Nothing published is
   * touched (no record is sent twice) and no cursor moves past an unsent record (none is skipped).
   */
  resize(payloadBytes: number, compression: Compression = this.compression): void {
    this.compression = compression;
    const first = (ready: readonly PackedMessage[], packer: MessagePacker): number =>
      Math.min(ready[0]?.seqs[0] ?? Infinity, packer.pendingSeqs[0] ?? Infinity);
    const liveFirst = first(this.liveReady, this.livePacker);
    const backlogFirst = first(this.backlogReady, this.backlogPacker);
    if (backlogFirst !== Infinity) {
      const packedUntil = Math.max(
        this.backlogPacker.pendingSeqs[this.backlogPacker.pendingSeqs.length - 1] ?? 0,
        ...this.backlogReady.map((m) => m.seqs[m.seqs.length - 1] ?? 0),
      );
      this.backlog = { after: backlogFirst - 1, until: Math.max(this.backlog?.until ?? 0, packedUntil) };
    }
    if (liveFirst !== Infinity) {
      this.live = liveFirst - 1;
      this.liveMore = true;
    }
    this.gen++; // a pull waiting on the source packs for the old size: dropped, pulled again
    this.liveReady.length = 0;
    this.backlogReady.length = 0;
    this.livePacker = new MessagePacker(this.gatewayId, payloadBytes, compression);
    this.backlogPacker = new MessagePacker(this.gatewayId, payloadBytes, compression);
  }

  /** New records were committed: the live cursor has something to pull. */
  appended(): void {
    this.appends++;
    this.liveMore = true;
  }

  /** The next message to publish: live messages first, alternating with a ready backlog message. */
  peek(): NextMessage | null {
    const live = this.liveReady[0];
    const old = this.tailUntil === null ? this.backlogReady[0] : undefined;
    if (live !== undefined && (old === undefined || !this.lastLive)) return { msg: live, live: true };
    return old === undefined ? null : { msg: old, live: false };
  }

  /** Removes the message peek() returned (it is being published). */
  shift(live: boolean): void {
    this.lastLive = live;
    if (live) this.liveReady.shift();
    else this.backlogReady.shift();
  }

  /** New records may be waiting for the live cursor and nothing live is packed: pull before sending. */
  get liveWaiting(): boolean {
    return this.liveMore && this.liveReady.length === 0;
  }

  /** Whether a backlog region remains to be pulled or sent. */
  get draining(): boolean {
    return this.backlog !== null || this.backlogReady.length > 0 || this.backlogPacker.pendingSeqs.length > 0;
  }

  /**
   * Pulls one batch of records: the live cursor's when it may have some and nothing live is waiting,
   * otherwise the backlog's while fewer than `backlogAhead` of its messages wait packed. Returns
   * false when there was nothing to pull.
   */
  async pull(backlogAhead: number): Promise<boolean> {
    if (this.liveReady.length === 0 && this.liveMore) {
      await this.pullLive();
      return true;
    }
    if (this.backlogReady.length < backlogAhead && this.backlog !== null && this.tailUntil === null) {
      await this.pullBacklog(this.backlog);
      return true;
    }
    return false;
  }

  // A short read proves nothing about what is left: the source may have quarantined or dropped
  // records inside it (RecordSource.next returns "fewer, or none"). So a cursor ends by seq: the
  // live one when it reached the newest committed seq or a read came back empty, the backlog one
  // when it passed `until` or a read came back empty.

  private async pullLive(): Promise<void> {
    const gen = this.gen;
    const appends = this.appends;
    const until = this.tailUntil ?? Infinity;
    const read = this.live >= until ? [] : await this.source.next(this.live, PULL_RECORDS);
    if (gen !== this.gen) return; // rewound meanwhile: pulled again later
    const records = read.filter((r) => r.seq <= until);
    this.pack(records, this.livePacker, this.liveReady);
    const last = records[records.length - 1];
    if (last !== undefined) this.live = last.seq;
    const newest = Math.min(this.source.lastSeq?.() ?? Infinity, until);
    const caughtUp = records.length === 0 || this.live >= newest;
    if (caughtUp) {
      // Send the partial message now (latency) and wait for onAppend.
      if (appends === this.appends) this.liveMore = false;
      this.liveReady.push(...this.livePacker.flushAll());
    }
  }

  private async pullBacklog(region: { after: number; until: number }): Promise<void> {
    // The event loop gets a turn first. The queue answers most backlog pulls from memory (its
    // read-ahead): without this, a drain could pack for hundreds of ms with no live commit, timer
    // or ack getting in between (live p99 5.5 s instead of 0.26 s in the bench's compressed drain).
    await new Promise<void>((resolve) => setImmediate(resolve));
    const gen = this.gen;
    // The region holds at most until − after seqs: never read (and open) records past it.
    const limit = Math.min(PULL_RECORDS, region.until - region.after);
    const records = await this.source.next(region.after, limit);
    if (gen !== this.gen) return;
    const inRegion = records.filter((r) => r.seq <= region.until);
    this.pack(inRegion, this.backlogPacker, this.backlogReady);
    const last = inRegion[inRegion.length - 1];
    if (last !== undefined) region.after = last.seq;
    if (records.length === 0 || inRegion.length < records.length || region.after >= region.until) {
      // The region is read (the rest was acknowledged, dropped or quarantined): close its last message.
      this.backlog = null;
      this.backlogReady.push(...this.backlogPacker.flushAll());
    }
  }

  private pack(records: readonly OpenRecord[], packer: MessagePacker, ready: PackedMessage[]): void {
    for (const rec of records) {
      const closed = packer.add(rec);
      if (closed) ready.push(closed);
    }
  }
}
