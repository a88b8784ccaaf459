import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import {
  emitPolicy,
  formatPolicy,
  type NsJailConfig,
  parsePolicy,
  policyDescriptor,
} from '../src/index';
import { message } from './arbitrary';

const policies = message(policyDescriptor) as fc.Arbitrary<NsJailConfig>;

describe('round trips over generated policies', () => {
  test('parse(emit(p)) deep-equals p', () => {
    fc.assert(
      fc.property(policies, (p) => {
        expect(parsePolicy(emitPolicy(p)).policy).toEqual(p);
      }),
      { numRuns: 300 },
    );
  });

  test('the emitted text is valid JSON-free protobuf text that parses as bytes too', () => {
    fc.assert(
      fc.property(policies, (p) => {
        expect(parsePolicy(Buffer.from(emitPolicy(p))).policy).toEqual(p);
      }),
      { numRuns: 100 },
    );
  });

  test('format is idempotent and keeps the meaning', () => {
    fc.assert(
      fc.property(policies, (p) => {
        const once = formatPolicy(emitPolicy(p));
        expect(formatPolicy(once)).toBe(once);
        expect(parsePolicy(once).policy).toEqual(p);
      }),
      { numRuns: 200 },
    );
  });
});
