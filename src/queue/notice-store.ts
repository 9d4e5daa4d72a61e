// Reading the notice records and their meta back at open (notices.ts holds them in memory).

import {
  KIND_NOTICE,
  META_NOTICE_TOTALS,
  META_PENDING_GAPS,
  NOTICE_END,
  queueKey,
  seqOfKey,
  toRecord,
} from './keys.js';
import { readGaps, readNoticeTotals, type NoticeBook } from './notices.js';
import type { Db } from './store.js';

/** Loads the queued notices, their totals and the pending gaps into `book`; the highest notice seq (0 if none). */
export async function loadNotices(db: Db, book: NoticeBook): Promise<number> {
  const rows = await db.iterator({ gte: queueKey(KIND_NOTICE, 0), lt: NOTICE_END }).all();
  const queued = rows.map(([k, v]) => toRecord(seqOfKey(k), v));
  book.load(
    queued,
    readNoticeTotals(await db.get(META_NOTICE_TOTALS)),
    readGaps(await db.get(META_PENDING_GAPS)),
  );
  return queued.at(-1)?.seq ?? 0;
}
