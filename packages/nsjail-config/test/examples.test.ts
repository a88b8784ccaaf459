import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { emitPolicy, parsePolicy, parsePolicyFile } from '../src/index';
import { nsjailExamples, repoRoot } from './helpers';

// nsjail's own example policies are never in this repo: KTL_NSJAIL_EXAMPLES names their folder.
const examples = nsjailExamples();
const testdataDir = join(repoRoot, 'testdata', 'sandbox');
const ours = readdirSync(testdataDir).filter((f) => f.endsWith('.cfg'));

describe("nsjail's example policies", () => {
  const { dir, files, reason } = examples;
  if (dir && files.length > 0) {
    test.each(files)('%s parses and round-trips through the emitter', async (name) => {
      const parsed = await parsePolicyFile(join(dir, name));
      expect(parsed.source.format).toBe('text');
      expect(Object.keys(parsed.policy).length).toBeGreaterThan(0);
      const again = parsePolicy(emitPolicy(parsed.policy));
      expect(again.policy).toEqual(parsed.policy);
    });
  } else {
    test.skip(`example policies: ${reason}`, () => {});
  }
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
