/**
 * Command-line behaviour matched to docker buildx's: a single-value flag given twice means its
 * last value; --iidfile with a local or tar output is refused with buildx's words; a missing
 * CONTEXT is reported without oclif's note about flags taking several values.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { type FlagShape, lastFlagWins } from '../src/build/last-flag-wins';
import { ktl } from './helpers';
import { buildx, ktlBuild, modes, ok } from './reference';

const dir = mkdtempSync(join(tmpdir(), 'ktl-flags-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('lastFlagWins', () => {
  const flags: Record<string, FlagShape> = {
    file: { type: 'option', char: 'f' },
    tag: { type: 'option', char: 't', multiple: true },
    quiet: { type: 'boolean', char: 'q' },
    pull: { type: 'boolean' },
    progress: { type: 'option' },
  };
  test.each([
    [
      ['-f', 'a', '-f', 'b', '.'],
      ['-f', 'b', '.'],
    ],
    [
      ['--file=a', '-fb', '.', '--file', 'c'],
      ['.', '--file', 'c'],
    ],
    [
      ['-t', 'x', '-t', 'y', '.'],
      ['-t', 'x', '-t', 'y', '.'],
    ],
    [
      ['-q', '--pull', '-q', '--pull', '.'],
      ['-q', '--pull', '.'],
    ],
    [
      ['--progress', 'plain', '.', '--progress=tty'],
      ['.', '--progress=tty'],
    ],
    // A value that looks like a flag is the option's value; nothing after -- is touched.
    [
      ['-f', '-', '-f', '-', '--', '-f', 'x'],
      ['-f', '-', '--', '-f', 'x'],
    ],
    [
      ['-f', 'a', '.'],
      ['-f', 'a', '.'],
    ],
  ])('%j -> %j', (argv, want) => expect(lastFlagWins(argv, flags)).toEqual(want));
});

describe.each(modes)('docker flag habits, ktl $label', (mode) => {
  mode.gate.test(`-f given twice builds the last one, as buildx does${mode.gate.why}`, () => {
    const c = join(dir, `twice-${mode.sandboxed}`);
    mkdirSync(c);
    writeFileSync(join(c, 'a.Dockerfile'), 'FROM scratch\nCOPY a.Dockerfile /from-a\n');
    writeFileSync(join(c, 'b.Dockerfile'), 'FROM scratch\nCOPY b.Dockerfile /from-b\n');
    const args = ['-f', join(c, 'a.Dockerfile'), '-f', join(c, 'b.Dockerfile'), c];
    const ours = join(dir, `twice-ktl-${mode.sandboxed}`);
    const theirs = join(dir, `twice-buildx-${mode.sandboxed}`);
    ok(ktlBuild([...args, '-o', `type=local,dest=${ours}`], mode), 'ktl');
    ok(buildx([...args, '-o', `type=local,dest=${theirs}`]), 'buildx');
    expect(readdirSync(ours)).toEqual(readdirSync(theirs));
    expect(readdirSync(ours)).toEqual(['from-b']);
  });
});

test("--iidfile with a local or tar output is refused before anything runs, in buildx's words (exit 2)", () => {
  const c = join(dir, 'iid-ctx');
  mkdirSync(c);
  writeFileSync(join(c, 'Dockerfile'), 'FROM scratch\n');
  for (const out of [`type=local,dest=${join(dir, 'o')}`, `type=tar,dest=${join(dir, 'o.tar')}`]) {
    const r = ktl(['build', c, '--iidfile', join(dir, 'iid'), '-o', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('local and tar exporters are incompatible with image ID file');
  }
});

test("no CONTEXT: the missing argument, without oclif's note on multiple-value flags (exit 2)", () => {
  const r = ktl(['build', '-t', 'x']);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain(
    'ERROR: Missing 1 required arg:\ncontext  build context directory\nhint: see ktl build --help\n',
  );
  expect(r.stderr).not.toContain('Note:');
  expect(r.stderr).not.toContain('allow multiple values');
});
