import { describe, expect, test } from '@jest/globals';
import { cleanPath, PatternMatcher } from '../src/session/patterns';

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
