import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from '@jest/globals';
import {
  BAD_PATTERN,
  cleanPath,
  GoPatternError,
  type MatchInfo,
  PatternMatcher,
} from '../src/session/patterns';

describe('cleanPath (Go path.Clean)', () => {
  test.each([
    ['', '.'],
    ['./a//b/', 'a/b'],
    ['a/../../b', '../b'],
    ['/../a', '/a'],
    ['/', '/'],
    ['a/./b/..', 'a'],
  ])('%j -> %j', (i, o) => expect(cleanPath(i)).toBe(o));
});

describe('PatternMatcher', () => {
  const m = (patterns: string[], path: string) =>
    new PatternMatcher(patterns).matchesOrParentMatches(path);

  test.each([
    [['*.log'], 'debug.log', true],
    [['*.log'], 'sub/debug.log', false], // * does not cross directories
    [['**/*.log'], 'sub/deep/debug.log', true],
    [['**/*.log'], 'debug.log', true],
    [['**/node_modules'], 'a/node_modules', true],
    [['**/node_modules'], 'node_modules', true],
    [['**'], 'anything/at/all', true],
    [['build/**'], 'build/x/y', true],
    [['build'], 'build/x/y', true], // a matching parent matches everything below
    [['bu?ld'], 'build', true],
    [['bu?ld'], 'bu/ld', false],
    [['[a-c].txt'], 'b.txt', true],
    [['[a-c].txt'], 'd.txt', false],
    [['x, y.txt'], 'x, y.txt', true],
    [['a.b'], 'axb', false], // `.` is literal
    [['\\*.txt'], '*.txt', true],
    [['\\*.txt'], 'a.txt', false],
    [['/abs/../top'], '/top', true],
    [['*', '!keep'], 'keep', false],
    [['*', '!keep'], 'drop', true],
    [['sub/*', '!sub/keep.txt'], 'sub/keep.txt', false],
    [['sub/*', '!sub/keep.txt', 'sub/keep*'], 'sub/keep.txt', true], // the last match wins
    [['  ', 'a'], 'a', true], // blank patterns are ignored
  ])('%j matches %j: %s', (patterns, path, want) => {
    expect(m(patterns, path)).toBe(want);
  });

  test('a lone "!" is rejected', () => {
    expect(() => new PatternMatcher(['!'])).toThrow(/illegal exclusion/);
  });

  test('matchesUsingParent carries parent results down', () => {
    const pm = new PatternMatcher(['dir', '!dir/keep']);
    const d = pm.matchesUsingParent('dir', undefined);
    expect(d.matched).toBe(true);
    expect(pm.matchesUsingParent('dir/x', d.info).matched).toBe(true);
    expect(pm.matchesUsingParent('dir/keep', d.info).matched).toBe(false);
  });
});

/**
 * moby/patternmatcher's published vectors (fixtures/patternmatcher-vectors.json): what buildx's
 * client decides for each pattern and path, through both of the matcher's ways (the whole
 * path with its parents, and the walk's, carried from parent to child).
 */
const vectors = JSON.parse(
  readFileSync(
    join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'patternmatcher-vectors.json'),
    'utf8',
  ),
) as {
  matches: [string, string, boolean][];
  multiPattern: [string[], string, boolean][];
  filepathMatch: [string, string, boolean, string | null][];
};

/** The walk's way, as the vectors' own test does it: the parents (Go's filepath.Dir of the
 * path, split) matched first, each result carried to the next. */
function byWalk(pm: PatternMatcher, path: string): boolean {
  const slash = path.lastIndexOf('/');
  const parent = slash < 0 ? '.' : slash === 0 ? '/' : cleanPath(path.slice(0, slash));
  let info: MatchInfo;
  if (parent !== '.') {
    const dirs = parent.split('/');
    for (let i = 0; i < dirs.length; i++)
      info = pm.matchesUsingParent(dirs.slice(0, i + 1).join('/'), info).info;
  }
  return pm.matchesUsingParent(path, info).matched;
}

describe('moby/patternmatcher vectors', () => {
  test.each(vectors.matches)('%j matches %j: %s', (pattern, path, want) => {
    const pm = new PatternMatcher([pattern]);
    expect(pm.matchesOrParentMatches(path)).toBe(want);
    expect(byWalk(pm, path)).toBe(want);
  });

  test.each(vectors.multiPattern)('%j matches %j: %s', (patterns, path, want) => {
    const pm = new PatternMatcher(patterns);
    expect(pm.matchesOrParentMatches(path)).toBe(want);
    expect(byWalk(pm, path)).toBe(want);
  });

  // Go's filepath.Match vectors through the matcher (its Matches: a path of "." is never
  // matched): the same answers, and the same patterns refused as syntax errors.
  test.each(vectors.filepathMatch)('%j on %j: %s, error %j', (pattern, path, want, error) => {
    const run = () => new PatternMatcher([pattern]).matchesOrParentMatches(cleanPath(path));
    if (error !== null) expect(run).toThrow(new GoPatternError());
    else expect(run()).toBe(want);
  });

  test("a pattern filepath.Match takes but Go's regexp cannot compile fails each match, not the matcher", () => {
    const pm = new PatternMatcher(['[Local-Only]/']); // l-O is a reversed range
    expect(() => pm.matchesOrParentMatches('x')).toThrow(BAD_PATTERN);
    expect(() => pm.matchesOrParentMatches('x')).toThrow(BAD_PATTERN);
  });
});

describe("Go meanings where JavaScript's differ", () => {
  const m = (p: string, path: string) => new PatternMatcher([p]).matchesOrParentMatches(path);
  test.each([
    // Go's regexp: \a is BEL, \x41 is A, \t a tab; JavaScript would take \a as a.
    ['\\a', 'a', false],
    ['\\a', '\x07', true],
    ['x\\x41*', 'xA1', true],
    ['\\tb*', '\tb', true],
    // POSIX classes in brackets; \s is ASCII whitespace only; \d digits.
    ['[[:alpha:]]*', 'abc', true],
    ['[[:alpha:]]*', '1bc', false],
    ['[[:^alpha:]]?', '1b', true],
    ['a\\sb*', 'a\u00a0b', false],
    ['a\\sb*', 'a b', true],
    ['[\\d]x', '5x', true],
    ['\\pL*', 'é', true],
    // \Q quotes to the end: the final $ is literal too, so the rest is a prefix.
    ['\\Qa*', 'a*', false],
    ['\\Qa*', 'a[^/]*$', true],
    ['\\Qa*', 'a[^/]*$tail', true],
    // `.` in Go's regexp excludes only \n: a name with \r matches `**` suffixes as it is.
    ['x/**/y*', 'x/a\rb/y', true],
  ])('%j on %j: %s', (p, path, want) => expect(m(p, path)).toBe(want));

  test.each(['\\q', '\\8', '\\1x*', '[z-a]', '[[:foo:]]x', '\\C*', '\\é*', '\\E*', '\\pX*'])(
    "%j: Go's regexp refuses it, so every match of it fails",
    (p) => expect(() => m(p, 'anything')).toThrow(BAD_PATTERN),
  );

  test.each([
    '[]a]',
    '[-]',
    '[x-]',
    '\\',
    '[a-b-c]',
    '[',
    '[^',
    '[^bc',
    'a[',
    'ok',
    '!x[',
    'x/[-x]',
  ])('%j: filepath.Match refuses it when the matcher is made', (p) => {
    const make = () => new PatternMatcher(['fine', p]);
    if (p === 'ok') expect(make).not.toThrow();
    else expect(make).toThrow(BAD_PATTERN);
  });
});
