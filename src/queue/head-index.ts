// What the queue knows in memory about its oldest records: seq, reading count, t0 and stored
// size of at most `cap` of them, so acks, drops and the first/oldest figures need no disk read in
// the common case, while memory stays bounded however long the backlog (DESIGN.md §2.5).
//
// Invariant: every stored record with seq ≤ coveredTo is in the index. So when the index holds
// any live entry, its first one is the oldest record in the queue.

export interface HeadEntry {
  readonly seq: number;
  readonly count: number;
  readonly t0: number;
  /** Stored key + value bytes. */
  readonly size: number;
  live: boolean;
}

export class HeadIndex {
  private entries: HeadEntry[] = [];
  private head = 0;
  private liveCount = 0;
  coveredTo = 0;

  constructor(readonly cap: number) {}

  get live(): number {
    return this.liveCount;
  }

  get first(): HeadEntry | undefined {
    return this.entries[this.head];
  }

  /** Adds the newest record if it keeps the index contiguous and there is room. */
  appended(e: Omit<HeadEntry, 'live'>): void {
    if (this.coveredTo === e.seq - 1 && this.entries.length - this.head < this.cap) {
      this.entries.push({ ...e, live: true });
      this.liveCount++;
      this.coveredTo = e.seq;
    }
  }

  /** Loads entries read from disk (in seq order) after coveredTo; `upTo` is the new coveredTo. */
  refill(loaded: readonly Omit<HeadEntry, 'live'>[], upTo: number): void {
    for (const e of loaded) {
      this.entries.push({ ...e, live: true });
      this.liveCount++;
    }
    this.coveredTo = upTo;
  }

  /** Seqs [from, to] hold no record (burned by a failed write): still contiguous after them. */
  skip(from: number, to: number): void {
    if (this.coveredTo === from - 1) this.coveredTo = to;
  }

  find(seq: number): HeadEntry | undefined {
    let lo = this.head;
    let hi = this.entries.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const e = this.entries[mid]!;
      if (e.seq === seq) return e.live ? e : undefined;
      if (e.seq < seq) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }

  /** Drops an entry of this index; entries read from beyond coveredTo are not in it. */
  remove(e: HeadEntry): void {
    if (!e.live || this.find(e.seq) !== e) return;
    e.live = false;
    this.liveCount--;
    while (this.head < this.entries.length && !this.entries[this.head]!.live) this.head++;
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  /** Live entries from the oldest, for the drop-oldest policy. */
  *oldest(): Generator<HeadEntry> {
    for (let i = this.head; i < this.entries.length; i++) {
      const e = this.entries[i]!;
      if (e.live) yield e;
    }
  }
}
