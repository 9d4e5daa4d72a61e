// The RecordSource contract, for both sources the uplink is tested against.

import { recordSourceContract } from '../../helpers/record-source-contract.js';
import { HARNESSES } from '../../helpers/record-sources.js';

for (const { name, make } of HARNESSES) recordSourceContract(name, make);
