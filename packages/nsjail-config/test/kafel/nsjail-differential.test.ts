import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { quoteString } from '../../src/emit';
import { hostKafelArch, parseKafel } from '../../src/kafel';
import { findNsjail } from '../helpers';
import { invalidKafel, validKafel } from './cases';

// nsjail compiles seccomp_string with its embedded kafel before running anything: the same
// policies must be accepted and refused by both, but for the few ktl refuses on purpose.
const nsjail = findNsjail();
const gate = nsjail.path ? test : test.skip;
const label = (s: string) => (nsjail.path ? s : `${s} (skipped: ${nsjail.reason})`);
const dir = mkdtempSync(join(tmpdir(), 'ktl-kafel-diff-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function nsjailCompiles(src: string, name: string): boolean {
  const f = join(dir, `${name.replace(/[^a-z0-9]+/gi, '_')}.cfg`);
  const lines = src.split('\n').map((l) => `seccomp_string: ${quoteString(l)}`);
  writeFileSync(f, `mount { src: "/" dst: "/" is_bind: true }\n${lines.join('\n')}\n`);
  const r = spawnSync(nsjail.path!, ['-q', '--config', f, '--', '/bin/true'], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  return !/Could not compile policy|Couldn't prepare sandboxing policy/.test(r.stderr);
}

const arch = hostKafelArch();
// nsjail ends every seccomp_string entry with '\n' (so kafel never sees the source end without
// one, and errors that need it to cannot happen there: `validWithNewline`); NUL cannot survive
// the protobuf text either.
const cases = [
  ...validKafel.map((c) => ({ ...c, ours: true, theirs: true })),
  ...invalidKafel.map((c) => ({
    ...c,
    ours: c.validWithNewline !== undefined,
    theirs: c.kafelAccepts === true || c.validWithNewline !== undefined,
  })),
].filter((c) => (c.arch ?? 'x86_64') === arch && !c.src.includes('\0') && !c.src.includes('\r'));

describe('kafel differential against nsjail', () => {
  gate.each(cases)(label('$name: nsjail and ktl agree'), (c) => {
    const ours = parseKafel(`${c.src}\n`, { arch }).ok;
    expect({ name: c.name, ours, nsjail: nsjailCompiles(c.src, c.name) }).toEqual({
      name: c.name,
      ours: c.ours,
      nsjail: c.theirs,
    });
  });
});
