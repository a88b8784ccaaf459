/**
 * The directory listing fsutil's sender produces, entry for entry:
 * - depth first, a directory before its contents, the root itself not listed;
 * - names within a directory in byte order of their UTF-8 encoding (Go's string order), not
 *   localeCompare or UTF-16 order, else the daemon fails with "changes out of order";
 * - include / exclude patterns and followpaths applied the way fsutil's filter applies them,
 *   including listing a directory only once something inside it is kept;
 * - a file whose inode was already listed becomes a hardlink to the first path listed.
 *
 * Synchronous fs calls, one lstat per entry: on this kind of machine, lstat through libuv's
 * threadpool (a directory's entries in flight at once, results taken in order) cost more CPU
 * and more time than the calls themselves (20k entries: 330 vs 275 ms), and the daemon
 * receiving the listing needs the other CPU.
 */
import { type BigIntStats, lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { toWireStat, type WireStat } from './fsstat';
import { cleanPath, type MatchInfo, type Pattern, PatternMatcher } from './patterns';

export interface WalkOptions {
  readonly includePatterns?: readonly string[] | undefined;
  readonly excludePatterns?: readonly string[] | undefined;
  readonly followPaths?: readonly string[] | undefined;
}

export interface WalkEntry {
  readonly stat: WireStat;
  /** Absolute path on this machine. */
  readonly abs: string;
  /** Device and inode listed: the file whose data is sent must still be this one. */
  readonly dev: bigint;
  readonly ino: bigint;
}

const PATTERN_CHARS = /[*[\]?^\\]/;

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

// UTF-16 code unit order is UTF-8 byte order except where a surrogate (U+10000 and above)
// meets U+E000..U+FFFF: names without such code units sort with the plain comparison.
const ORDER_DIFFERS = /[\uD800-\uFFFF]/;

function listDir(abs: string): string[] {
  const names = readdirSync(abs);
  return names.some((n) => ORDER_DIFFERS.test(n)) ? names.sort(byteOrder) : names.sort();
}

function lstatOrUndefined(abs: string) {
  try {
    return lstatSync(abs, { bigint: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined; // vanished: skip, like fsutil
    throw e;
  }
}

function hasWildcard(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const ch = name[i];
    if (ch === '\\') i++;
    else if (ch === '*' || ch === '?' || ch === '[') return true;
  }
  return false;
}

/** fsutil's FollowLinks: followpaths become include patterns, with symlinks on the way resolved. */
export function resolveFollowPaths(root: string, paths: readonly string[]): string[] | undefined {
  const resolved = new Set<string>();
  const linkTargets = (rel: string, allowWildcard: boolean): string[] | undefined => {
    const base = rel.slice(rel.lastIndexOf('/') + 1);
    if (allowWildcard && hasWildcard(base)) {
      const dir = rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '.';
      let names: string[];
      try {
        names = listDir(join(root, dir));
      } catch {
        return undefined;
      }
      const pat = new PatternMatcher([base]);
      const out: string[] = [];
      for (const n of names) {
        if (pat.patterns[0]!.match(n))
          out.push(...(linkTargets(cleanPath(`${dir}/${n}`), false) ?? []));
      }
      return out;
    }
    const st = lstatOrUndefined(join(root, rel));
    if (!st?.isSymbolicLink()) return undefined;
    const link = cleanPath(readlinkSync(join(root, rel)));
    const dir = rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '';
    // Targets are taken relative to the context root, absolute ones included.
    return [link.startsWith('/') ? link : cleanPath(`/${dir}/${link}`)];
  };
  const append = (input: string, depth: number): void => {
    if (depth > 40) return; // symlink loop
    let p = cleanPath(`./${input}`).replace(/^\/+/, '') || '.';
    let current = '.';
    for (;;) {
      const slash = p.indexOf('/');
      const head = slash < 0 ? p : p.slice(0, slash);
      current = cleanPath(`${current}/${head}`);
      const targets = linkTargets(current, true);
      p = slash < 0 ? '' : p.slice(slash + 1);
      if ((p === '' || targets !== undefined) && resolved.has(current)) return;
      if (targets !== undefined) {
        resolved.add(current);
        for (const t of targets) append(cleanPath(`${t}/${p}`), depth + 1);
        return;
      }
      if (p === '') {
        resolved.add(current);
        return;
      }
    }
  };
  for (const p of paths) append(p, 0);
  const sorted = [...resolved].sort();
  const out: string[] = [];
  let last: string | undefined;
  for (const s of sorted) {
    if (s === '.') return undefined; // the whole tree: no include filter at all
    if (last !== undefined && s.startsWith(`${last}/`)) continue;
    out.push(s);
    last = s;
  }
  return out;
}

interface Filter {
  readonly matcher: PatternMatcher;
  /** Every relevant pattern is a plain prefix, so whole directories can be skipped. */
  readonly prefixOnly: boolean;
}

function makeFilter(patterns: readonly string[], exceptions: boolean): Filter | undefined {
  if (patterns.length === 0) return undefined;
  const matcher = new PatternMatcher(patterns);
  const prefixOnly = !matcher.patterns.some(
    (p: Pattern) => p.exclusion === exceptions && PATTERN_CHARS.test(p.withoutTrailingGlob()),
  );
  return { matcher, prefixOnly };
}

/** Could a non-skipped pattern of `f` still match something under directory `rel`? */
function mayMatchInside(f: Filter, rel: string, exceptions: boolean): boolean {
  const dirSlash = `${rel}/`;
  return f.matcher.patterns.some(
    (p) => p.exclusion === exceptions && `${p.withoutTrailingGlob()}/`.startsWith(dirSlash),
  );
}

interface OpenDir {
  readonly prefix: string;
  readonly include: MatchInfo;
  readonly exclude: MatchInfo;
  readonly entry: WalkEntry;
  listed: boolean;
}

/** A directory being listed: its sorted names and how far the walk is through them. */
interface Frame {
  /** Relative path of the directory followed by `/` (empty for the root). */
  readonly relSlash: string;
  readonly names: readonly string[];
  next: number;
}

/**
 * The entries to send, in order, a batch at a time: `next(max)` returns up to `max` entries,
 * fewer only at the end (then the walk is done).
 */
export class ContextWalker {
  private readonly root: string;
  private readonly rootSlash: string;
  private inc: Filter | undefined;
  private exc: Filter | undefined;
  private readonly open: OpenDir[] = [];
  private readonly frames: Frame[] = [];
  private readonly inodes = new Map<string, string>();
  private started = false;

  constructor(
    root: string,
    private readonly opts: WalkOptions = {},
  ) {
    this.root = resolve(root);
    this.rootSlash = this.root.endsWith('/') ? this.root : `${this.root}/`;
  }

  /** The filters and the root's listing: on the first next(), so that what fails there is
   * reported as a failure of the listing. */
  private start(): void {
    this.started = true;
    const { opts } = this;
    let includes = [...(opts.includePatterns ?? [])];
    if (opts.followPaths && opts.followPaths.length > 0) {
      const targets = resolveFollowPaths(this.root, opts.followPaths);
      if (targets !== undefined) includes = [...new Set([...includes, ...targets])];
    }
    this.inc = makeFilter(includes, false);
    this.exc = makeFilter(opts.excludePatterns ?? [], true);
    this.enter('', listDir(this.root));
  }

  /** Every entry has been returned by next(). */
  get done(): boolean {
    return this.started && this.frames.every((f) => f.next >= f.names.length);
  }

  next(max: number): WalkEntry[] {
    const out: WalkEntry[] = [];
    if (!this.started) this.start();
    while (out.length < max) {
      const frame = this.frames[this.frames.length - 1];
      if (!frame) break;
      if (frame.next >= frame.names.length) {
        this.frames.pop();
        continue;
      }
      const rel = frame.relSlash + frame.names[frame.next]!;
      const abs = this.rootSlash + rel;
      frame.next++;
      this.visit(rel, abs, lstatOrUndefined(abs), out);
    }
    return out;
  }

  /** Starts listing a directory's entries (`relSlash` is its path with a trailing `/`). */
  private enter(relSlash: string, names: readonly string[]): void {
    this.frames.push({ relSlash, names, next: 0 });
  }

  private visit(rel: string, abs: string, st: BigIntStats | undefined, out: WalkEntry[]): void {
    if (!st) return;
    const { inc, exc, open } = this;
    const isDir = st.isDirectory();
    while (open.length > 0 && !rel.startsWith(open[open.length - 1]!.prefix)) open.pop();
    const parent = open[open.length - 1];

    let skip = false;
    let incInfo: MatchInfo;
    let excInfo: MatchInfo;
    if (inc) {
      const r = inc.matcher.matchesUsingParent(rel, parent?.include);
      incInfo = r.info;
      if (!r.matched) {
        if (isDir && inc.prefixOnly && !mayMatchInside(inc, rel, false)) return;
        skip = true;
      }
    }
    if (exc) {
      const r = exc.matcher.matchesUsingParent(rel, parent?.exclude);
      excInfo = r.info;
      if (r.matched) {
        if (isDir && exc.prefixOnly) {
          if (!exc.matcher.hasExclusions || !mayMatchInside(exc, rel, true)) return;
        }
        skip = true;
      }
    }

    const linkTarget = st.isSymbolicLink() ? readlinkSync(abs) : undefined;
    const entry: WalkEntry = {
      stat: toWireStat(rel, st, linkTarget),
      abs,
      dev: st.dev,
      ino: st.ino,
    };
    if (!skip) {
      for (const d of open) {
        if (d.listed) continue;
        d.listed = true;
        out.push(d.entry);
      }
      if (st.isFile() && st.nlink > 1n) {
        const key = `${st.dev}:${st.ino}`;
        const first = this.inodes.get(key);
        if (first !== undefined) {
          entry.stat.linkname = first;
          entry.stat.size = 0n;
        } else this.inodes.set(key, rel);
      }
      out.push(entry);
    }
    if (!isDir) return;
    open.push({ prefix: `${rel}/`, include: incInfo, exclude: excInfo, entry, listed: !skip });
    let names: string[];
    try {
      names = listDir(abs);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // An unreadable directory that is filtered out anyway is not an error (as in fsutil).
      if (skip && (code === 'EACCES' || code === 'EPERM')) return;
      if (code === 'ENOENT' || code === 'ENOTDIR') return;
      throw e;
    }
    this.enter(`${rel}/`, names);
  }
}

/** The whole listing at once (tests, small trees). */
export function walkContext(root: string, opts: WalkOptions = {}): WalkEntry[] {
  const walker = new ContextWalker(root, opts);
  const all: WalkEntry[] = [];
  while (!walker.done) all.push(...walker.next(1024));
  return all;
}
