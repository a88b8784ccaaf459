/**
 * .dockerignore-style path patterns, matching the daemon-side expectations of fsutil's filter
 * (which uses moby's pattern matcher). The rules that matter for identical results:
 * - patterns are trimmed and Go-`filepath.Clean`ed; a leading `!` makes an exception;
 * - the last pattern that matches decides, and a pattern that cannot change the current
 *   result is not even evaluated;
 * - a pattern that matches a parent directory matches everything below it;
 * - `**` spans directories, `*` and `?` stay within one path element, `\` escapes;
 * - a pattern Go's filepath.Match rejects is an error when the matcher is made, and what a
 *   pattern matches is what Go's regexp makes of it (go-pattern.ts), errors included.
 */
import { GoPatternError, goGlobValid, goRegExp } from './go-pattern';

export { BAD_PATTERN, GoPatternError } from './go-pattern';

/** Go's path.Clean for slash paths. */
export function cleanPath(p: string): string {
  if (p === '') return '.';
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(part);
  }
  const s = out.join('/');
  return rooted ? `/${s}` : s || '.';
}

type Kind = 'exact' | 'prefix' | 'suffix' | 'regexp';

export class Pattern {
  readonly exclusion: boolean;
  /** Cleaned text without the `!`. */
  readonly text: string;
  readonly dirs: number;
  private readonly kind: Kind;
  /** The Go regexp's source, compiled on the first match as Go's matcher does. */
  private readonly source: string;
  private re: RegExp | undefined;
  private broken = false;

  constructor(raw: string) {
    let p = cleanPath(raw.trim());
    this.exclusion = p.startsWith('!');
    if (this.exclusion) {
      if (p.length === 1) throw new Error('illegal exclusion pattern: "!"');
      p = p.slice(1);
    }
    // moby's matcher calls filepath.Match on each pattern for its error alone.
    if (!goGlobValid(p)) throw new GoPatternError();
    this.text = p;
    this.dirs = p.split('/').length;
    const { kind, source } = compile(p);
    this.kind = kind;
    this.source = source;
  }

  /** The regexp, compiled on first use; a regexp Go cannot compile fails every match. */
  private regexp(): RegExp {
    if (this.re) return this.re;
    if (!this.broken) {
      try {
        this.re = goRegExp(this.source);
        return this.re;
      } catch (e) {
        if (!(e instanceof GoPatternError)) throw e;
        this.broken = true;
      }
    }
    throw new GoPatternError();
  }

  match(path: string): boolean {
    switch (this.kind) {
      case 'exact':
        return path === this.text;
      case 'prefix':
        return path.startsWith(this.text.slice(0, -2));
      case 'suffix': {
        const suffix = this.text.slice(2);
        return path.endsWith(suffix) || (suffix.startsWith('/') && path === suffix.slice(1));
      }
      default:
        return this.regexp().test(path);
    }
  }

  /** The pattern without a trailing `/**` or `/*`, for the directory-skipping shortcut. */
  withoutTrailingGlob(): string {
    let s = this.text;
    if (s.endsWith('/**')) s = s.slice(0, -3);
    if (s.endsWith('/*')) s = s.slice(0, -2);
    return s;
  }
}

const REGEX_SPECIAL = new Set(['.', '+', '(', ')', '|', '{', '}', '$']);

function compile(p: string): { kind: Kind; source: string } {
  let re = '^';
  let kind: Kind = 'exact';
  const chars = [...p];
  for (let i = 0; i < chars.length; i++) {
    const start = i;
    const ch = chars[i]!;
    if (ch === '*') {
      if (chars[i + 1] === '*') {
        i++;
        if (chars[i + 1] === '/') i++;
        if (i + 1 >= chars.length) {
          if (kind === 'exact') kind = 'prefix';
          else {
            re += '.*';
            kind = 'regexp';
          }
        } else {
          re += '(.*/)?';
          kind = 'regexp';
        }
        // A leading `**` makes a suffix match, unless a later wildcard turns it into a regexp.
        if (start === 0) kind = 'suffix';
      } else {
        re += '[^/]*';
        kind = 'regexp';
      }
    } else if (ch === '?') {
      re += '[^/]';
      kind = 'regexp';
    } else if (REGEX_SPECIAL.has(ch)) {
      re += `\\${ch}`;
    } else if (ch === '\\') {
      // The next character goes into the Go regexp escaped, whatever Go's regexp makes of it
      // (`\a` is BEL there).
      if (i + 1 < chars.length) {
        i++;
        re += `\\${chars[i]}`;
        kind = 'regexp';
      } else re += '\\';
    } else if (ch === '[' || ch === ']') {
      re += ch;
      kind = 'regexp';
    } else {
      re += ch;
    }
  }
  if (kind === 'regexp') re += '$';
  return { kind, source: re };
}

/** Per-pattern "matched a parent" flags, carried from a directory to its children. */
export type MatchInfo = readonly boolean[] | undefined;

function parentPrefixes(path: string): string[] {
  const i = path.lastIndexOf('/');
  if (i < 0) return [];
  const parts = path.slice(0, i).split('/');
  return parts.map((_, j) => parts.slice(0, j + 1).join('/'));
}

export class PatternMatcher {
  readonly patterns: readonly Pattern[];
  readonly hasExclusions: boolean;

  constructor(patterns: readonly string[]) {
    this.patterns = patterns.filter((p) => p.trim() !== '').map((p) => new Pattern(p));
    this.hasExclusions = this.patterns.some((p) => p.exclusion);
  }

  /** Does `path` (or any of its parent directories) match? */
  matchesOrParentMatches(path: string): boolean {
    let matched = false;
    const parents = parentPrefixes(path);
    for (const pat of this.patterns) {
      if (pat.exclusion !== matched) continue;
      const m = pat.match(path) || parents.some((d) => pat.match(d));
      if (m) matched = !pat.exclusion;
    }
    return matched;
  }

  /**
   * The walk-time form: `parent` is what this returned for the parent directory, so that
   * parent prefixes need not be re-matched at every depth.
   */
  matchesUsingParent(path: string, parent: MatchInfo): { matched: boolean; info: boolean[] } {
    let matched = false;
    const info: boolean[] = new Array(this.patterns.length).fill(false);
    let parents: string[] | undefined;
    this.patterns.forEach((pat, i) => {
      let m = parent?.[i] ?? false;
      if (!m) {
        if (pat.exclusion !== matched) return;
        m = pat.match(path);
        if (!m && parent === undefined) {
          parents ??= parentPrefixes(path);
          m = parents.some((d) => pat.match(d));
        }
      }
      info[i] = m;
      if (m) matched = !pat.exclusion;
    });
    return { matched, info };
  }
}
