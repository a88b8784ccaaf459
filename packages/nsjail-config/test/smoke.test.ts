import { describe, expect, test } from '@jest/globals';
import { packageName } from '../src/index';

describe('package', () => {
  test('exports its name', () => {
    expect(packageName).toBe('@ktl/nsjail-config');
  });
});
