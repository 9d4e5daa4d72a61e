// What the queue really occupies on disk, and how much room the filesystem has left.
//
// `queue.maxBytes` bounds the dataDir's real size: every file LevelDB keeps there (write-ahead
// log, tables, tombstones not yet compacted, MANIFEST, its LOG) and the spare file below, counted
// in allocated blocks, also while LevelDB compacts (see steadyBudget: so the queue holds records
// worth well under half of maxBytes). The write buffer (the WAL's size before it becomes a table) is sized from
// maxBytes so that a small budget is not spent on one 4 MiB log.
//
// `queue.minFreeBytes` is a reserve the queue never writes into: it stops growing (applies
// whenFull) before the filesystem fills. It is capped at an eighth of the filesystem, so a small
// card or a test tmpfs still leaves the queue room.
//
// The spare file: LevelDB needs space to open (it turns the log into a table and writes a new
// MANIFEST), so a database on a full filesystem could not be opened, nor reopened after a failed
// write. The queue keeps that much space in a file of its own while there is room, and deletes it
// when it must open without room; it is put back once the filesystem has room again.

import { readdir, stat, statfs, truncate, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The smallest budget maxBytes can give the disk (also the schema's minimum). */
export const MIN_DISK_BYTES = 1024 * 1024;
export const SPARE_FILE = 'edgegw-spare';

/**
 * LevelDB's write buffer for a queue of `budget` bytes on a filesystem of `fsBytes`: 1/16 of the
 * smaller, within 64 KiB .. 4 MiB (LevelDB's default). Its log, and the table it becomes, must fit
 * beside the queue: a 4 MiB buffer on a small card would fill it with one flush.
 */
export function writeBufferSize(budget: number, fsBytes = Infinity): number {
  return Math.min(4 * MiB, Math.max(64 * 1024, Math.floor(Math.min(budget, fsBytes) / 16)));
}

/**
 * LevelDB's table files: 1 MiB, the smallest it takes (its default is 2 MiB). A compaction of the
 * acknowledged range rewrites the tables straddling its end; smaller ones keep that small (store.ts).
 */
export const TABLE_FILE_SIZE = 1024 * 1024;

const MiB = 1024 * 1024;

export interface DiskFigures {
  /** Bytes the dataDir's files occupy (allocated blocks). */
  used: number;
  /** Bytes still free on the filesystem for this process. */
  free: number;
  /** The reserve in force: minFreeBytes, at most an eighth of the filesystem. */
  reserve: number;
}

/** At most this long between measurements while appends go by (ms). */
const MEASURE_EVERY_MS = 1000;

export class QueueDisk {
  private last: DiskFigures | null = null;
  private lastAt = -Infinity;
  /** Bytes announced since the last measurement. */
  private since = 0;
  /** LevelDB's write buffer, once the filesystem's size is known (bufferSize()). */
  private buffer: number;

  constructor(
    private readonly dir: string,
    private maxBytes: number,
    private minFreeBytes: number,
    private readonly now: () => number,
  ) {
    this.buffer = writeBufferSize(this.budget);
  }

  /** A reload: the new budget and reserve apply from the next append (the write buffer at the next open). */
  setLimits(maxBytes: number, minFreeBytes: number): void {
    this.maxBytes = maxBytes;
    this.minFreeBytes = minFreeBytes;
    this.lastAt = -Infinity; // measure again against the new figures
  }

  /** The write buffer for this budget and this filesystem (before LevelDB opens). */
  async bufferSize(): Promise<number> {
    const fs = await statfs(this.dir).catch(() => null);
    this.buffer = writeBufferSize(this.budget, fs === null ? Infinity : fs.blocks * fs.bsize);
    return this.buffer;
  }

  /** What LevelDB needs to open on a full filesystem: a table of its log, a MANIFEST, a new log. */
  private get spareSize(): number {
    return 2 * this.buffer + 64 * 1024;
  }

  /** The budget for the dataDir's real size. */
  get budget(): number {
    return Math.max(this.maxBytes, MIN_DISK_BYTES);
  }

  /**
   * The size the whenFull policy keeps the folder at. A LevelDB compaction writes the tables it
   * keeps before it deletes those it replaces, and with seq keys (tombstones of old seqs beside
   * new records) it may rewrite every table: the peak is about twice the steady size, less the
   * spare. Half of the budget plus half the spare keeps that peak within maxBytes.
   */
  get steadyBudget(): number {
    return Math.floor((this.budget + this.spareSize) / 2);
  }

  async measure(): Promise<DiskFigures> {
    let used = 0;
    for (const name of await readdir(this.dir)) {
      try {
        const st = await stat(join(this.dir, name));
        used += st.blocks * 512;
      } catch {
        // LevelDB deleted it meanwhile (an obsolete log or table).
      }
    }
    const fs = await statfs(this.dir);
    const total = fs.blocks * fs.bsize;
    return { used, free: fs.bavail * fs.bsize, reserve: Math.min(this.minFreeBytes, Math.floor(total / 8)) };
  }

  /**
   * Bytes to free before `adding` more may be written (0: it fits the budget and the reserve).
   * Measuring costs a readdir and a stat per file, so between measurements what was added is
   * summed on top of the last one (an overestimate: deletes and compactions only shrink it); a new
   * measurement comes once half the headroom is used, after a second, or after invalidate().
   */
  async over(adding: number): Promise<number> {
    let m = this.last;
    const headroom = m === null ? 0 : Math.min(this.steadyBudget - m.used, m.free - m.reserve);
    if (m === null || this.since + adding >= headroom / 2 || this.now() - this.lastAt >= MEASURE_EVERY_MS) {
      m = await this.measure();
      this.last = m;
      this.lastAt = this.now();
      this.since = 0;
    }
    const over = Math.max(
      0,
      m.used + this.since + adding - this.steadyBudget,
      m.reserve + this.since + adding - m.free,
    );
    if (over === 0) this.since += adding;
    return over;
  }

  /** Whether the filesystem has room for a compaction keeping `live` bytes (and a flushed log). */
  async roomToCompact(live: number): Promise<boolean> {
    const fs = await statfs(this.dir);
    return fs.bavail * fs.bsize >= live + 2 * this.buffer;
  }

  /** The next over() measures (after space was freed or taken). */
  invalidate(): void {
    this.last = null;
  }

  /** Deletes the spare when the filesystem has less than it free (before LevelDB opens). */
  async releaseSpareIfShort(): Promise<boolean> {
    const fs = await statfs(this.dir).catch(() => null);
    if (fs === null || fs.bavail * fs.bsize >= this.spareSize) return false;
    try {
      await unlink(join(this.dir, SPARE_FILE));
      return true;
    } catch {
      return false;
    }
  }

  /** Puts the spare in place when it is missing and the filesystem has room beyond the reserve. */
  async ensureSpare(): Promise<void> {
    const path = join(this.dir, SPARE_FILE);
    const size = this.spareSize;
    const st = await stat(path).catch(() => null);
    // Sized for this maxBytes: a smaller budget than the spare was made for shrinks it.
    if (st !== null && st.size > size) await truncate(path, size);
    if (st !== null && st.size >= size) return;
    this.invalidate();
    const m = await this.measure();
    // Only with room to spare: taking back the last free bytes would make the next write fail.
    if (m.free < m.reserve + 2 * size || m.used + size > this.budget) return;
    try {
      await writeFile(path, Buffer.alloc(size), { mode: 0o600, flush: true });
    } catch {
      // No room after all: a partial spare is no spare.
      await unlink(path).catch(() => undefined);
    }
  }
}
