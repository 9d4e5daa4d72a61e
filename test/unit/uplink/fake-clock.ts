// The uplink tests' clock: the shared FakeClock with a small, round start time.

import { FakeClock as BaseClock } from '../../helpers/fake-clock.js';

export class FakeClock extends BaseClock {
  constructor(start = 1_000_000) {
    super(start);
  }
}
