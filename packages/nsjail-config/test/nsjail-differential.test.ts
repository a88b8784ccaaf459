import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { PolicyError, parsePolicy } from '../src/index';
import { badCases, goodCases } from './cases';
import { findNsjail, nsjailAccepts, repoRoot } from './helpers';

// Differential test: nsjail's own parser and ours must agree on accept/reject for every case.
const nsjail = findNsjail();
const gate = nsjail.path ? test : test.skip;
const label = (s: string) => (nsjail.path ? s : `${s} (skipped: ${nsjail.reason})`);
const dir = mkdtempSync(join(tmpdir(), 'ktl-diff-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function oursAccepts(text: string): boolean {
  try {
    parsePolicy(Buffer.from(text));
    return true;
  } catch (e) {
    if (!PolicyError.is(e)) throw e;
    return false;
  }
}

const all = [
  ...badCases.map((c) => ({
    name: c.name,
    text: c.text,
    nsjail: c.stricterThanNsjail !== undefined,
  })),
  ...goodCases.map((c) => ({ name: c.name, text: c.text, nsjail: true })),
  ...readdirSync(join(repoRoot, 'testdata', 'sandbox'))
    .filter((f) => f.endsWith('.cfg'))
    .map((f) => ({
      name: `testdata/${f}`,
      text: readFileSync(join(repoRoot, 'testdata', 'sandbox', f), 'utf8'),
      nsjail: true,
    })),
];

describe('differential against nsjail', () => {
  gate.each(all)(label('$name: nsjail accepts it exactly when expected'), (c) => {
    const f = join(dir, `${c.name.replace(/[^a-z0-9]+/gi, '_')}.cfg`);
    writeFileSync(f, c.text);
    const theirs = nsjailAccepts(nsjail.path!, f);
    expect({ case: c.name, accepted: theirs.accepted }).toEqual({
      case: c.name,
      accepted: c.nsjail,
    });
  });

  test('our verdicts: every case ktl accepts, nsjail accepts too (ktl is never more lenient)', () => {
    for (const c of all)
      expect({ case: c.name, ours: oursAccepts(c.text) }).toEqual({
        case: c.name,
        ours: c.nsjail && !badCases.some((b) => b.name === c.name),
      });
  });
});
