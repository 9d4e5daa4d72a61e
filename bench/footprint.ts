// Section 5's parent side: runs footprint-child.ts in a fresh process per measurement.

import { askChild } from './child.js';
import type { FootprintReply, FootprintRequest } from './footprint-child.js';

export function runFootprint(req: FootprintRequest): Promise<FootprintReply> {
  return askChild(new URL('./footprint-child.js', import.meta.url), req, `footprint (${req.mode})`);
}
