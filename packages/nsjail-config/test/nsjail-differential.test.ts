import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { PolicyError, parsePolicy } from '../src/index';
import { badCases, badJsonBytes, goodCases } from './cases';
import { findNsjail, nsjailAccepts, repoRoot } from './helpers';

// Differential test: nsjail's own parser and ours must agree on accept/reject for every case.
const nsjail = findNsjail();
const gate = nsjail.path ? test : test.skip;
const label = (s: string) => (nsjail.path ? s : `${s} (skipped: ${nsjail.reason})`);
const dir = mkdtempSync(join(tmpdir(), 'ktl-diff-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function oursAccepts(bytes: Buffer): boolean {
  try {
    parsePolicy(bytes);
    return true;
  } catch (e) {
    if (!PolicyError.is(e)) throw e;
    return false;
  }
}

const refused = new Set([...badCases.map((c) => c.name), ...badJsonBytes.map((c) => c.name)]);
const all = [
  ...badCases.map((c) => ({
    name: c.name,
    bytes: Buffer.from(c.text),
    nsjail: c.stricterThanNsjail !== undefined,
  })),
  ...badJsonBytes.map((c) => ({ name: c.name, bytes: c.bytes, nsjail: false })),
  ...goodCases.map((c) => ({ name: c.name, bytes: Buffer.from(c.text), nsjail: true })),
  ...readdirSync(join(repoRoot, 'testdata', 'sandbox'))
    .filter((f) => f.endsWith('.cfg'))
    .map((f) => ({
      name: `testdata/${f}`,
      bytes: readFileSync(join(repoRoot, 'testdata', 'sandbox', f)),
      nsjail: true,
    })),
];

describe('differential against nsjail', () => {
  gate.each(all)(label('$name: nsjail accepts it exactly when expected'), (c) => {
    const f = join(dir, `${c.name.replace(/[^a-z0-9]+/gi, '_')}.cfg`);
    writeFileSync(f, c.bytes);
    const theirs = nsjailAccepts(nsjail.path!, f);
    expect({ case: c.name, accepted: theirs.accepted }).toEqual({
      case: c.name,
      accepted: c.nsjail,
    });
  });

  test('our verdicts: every case ktl accepts, nsjail accepts too (ktl is never more lenient)', () => {
    for (const c of all)
      expect({ case: c.name, ours: oursAccepts(c.bytes) }).toEqual({
        case: c.name,
        ours: c.nsjail && !refused.has(c.name),
      });
  });
});
