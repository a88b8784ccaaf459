import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { emitPolicy, parsePolicy, parsePolicyFile } from '../src/index';
import { repoRoot } from './helpers';

// nsjail's own example policies live in the steering repo's shared folder, never in this repo.
const examplesDir = join(repoRoot, '..', 'shared', 'nsjail-configs');
const examples = existsSync(examplesDir)
  ? readdirSync(examplesDir).filter((f) => f.endsWith('.cfg'))
  : [];
const testdataDir = join(repoRoot, 'testdata', 'sandbox');
const ours = readdirSync(testdataDir).filter((f) => f.endsWith('.cfg'));

describe("nsjail's example policies", () => {
  if (examples.length === 0) {
    test.skip(`skipped: ${examplesDir} is absent (it holds nsjail's examples on developer and CI machines)`, () => {});
  }
  test.each(examples)('%s parses and round-trips through the emitter', async (name) => {
    const parsed = await parsePolicyFile(join(examplesDir, name));
    expect(parsed.source.format).toBe('text');
    expect(Object.keys(parsed.policy).length).toBeGreaterThan(0);
    const again = parsePolicy(emitPolicy(parsed.policy));
    expect(again.policy).toEqual(parsed.policy);
  });
});

describe('testdata/sandbox policies', () => {
  test('there are the three documented policies', () => {
    expect(ours.sort()).toEqual(
      expect.arrayContaining(['hermetic.cfg', 'linux-ci.cfg', 'linux-strict.cfg']),
    );
  });
  test.each(ours)('%s parses and round-trips', async (name) => {
    const parsed = await parsePolicyFile(join(testdataDir, name));
    expect(parsePolicy(emitPolicy(parsed.policy)).policy).toEqual(parsed.policy);
  });
});
