// The consumer's errors carry the product's stable codes (src/errors.ts has no runtime imports, so
// the library stays free of the gateway's runtime).

import { EdgegwError, Exit } from '../errors.js';

/** Where decoding failed: the bytes (framing), the JSON, the structure, or an unknown version. */
export type DecodeFailure = 'framing' | 'json' | 'shape' | 'version';

export class DecodeError extends EdgegwError {
  constructor(
    readonly failure: DecodeFailure,
    message: string,
  ) {
    super('EDGEGW_E_DECODE', message, Exit.FAILURE);
    this.name = 'DecodeError';
  }
}

export class ConsumerStateError extends EdgegwError {
  constructor(message: string, options?: ErrorOptions) {
    super('EDGEGW_E_CONSUMER_IO', message, Exit.IOERR, options);
    this.name = 'ConsumerStateError';
  }
}
