// The sensor tests' clock: the shared FakeClock, starting after BUILD_TIME so the wall clock is
// plausible unless a test sets it otherwise.

import { FakeClock as BaseClock } from './fake-clock.js';

export class FakeClock extends BaseClock {
  constructor(start = Date.UTC(2027, 0, 1)) {
    super(start);
  }
}
