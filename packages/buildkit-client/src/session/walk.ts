/**
 * The directory listing fsutil's sender produces, entry for entry:
 * - depth first, a directory before its contents, the root itself not listed;
 * - names within a directory in byte order of their UTF-8 encoding (Go's string order), not
 *   localeCompare or UTF-16 order, else the daemon fails with "changes out of order";
 * - include / exclude patterns and followpaths applied the way fsutil's filter applies them,
 *   including listing a directory only once something inside it is kept;
 * - a file whose inode was already listed becomes a hardlink to the first path listed.
 *
 * The walker sends only what it listed and never follows a symbolic link below the root (the
 * repository being built may be changed under ktl by whoever controls it, while it is sent):
 * - the root is resolved once (realpath) and every path below is built from that real root;
 * - on Linux each directory is opened (O_NOFOLLOW) and checked before it is listed: the
 *   inode its entry was listed with, and the kernel's own record of where the opened directory
 *   is (/proc/self/fd), which is the expected path only if no directory on the way to it was
 *   swapped for a link. Its entries are then looked up through that open directory
 *   (/proc/<pid>/fd/<fd>/<name>), never through its path again; a directory that changed fails
 *   the listing ({@link contextChangedError}) instead of listing something else. One open,
 *   fstat, readlink and close per directory and no call more per entry, but a lookup through
 *   /proc costs more than one by path (the kernel leaves its lockless path walk for the fd's
 *   link): 20k entries in directories of 100 took 150 ms instead of 118 here. The reader of
 *   the file data checks the same ({@link openedAt}).
 * - elsewhere (no /proc/self/fd), paths as they are.
 *
 * Synchronous fs calls, one lstat per entry: on this kind of machine, lstat through libuv's
 * threadpool (a directory's entries in flight at once, results taken in order) cost more CPU
 * and more time than the calls themselves (20k entries: 330 vs 275 ms), and the daemon
 * receiving the listing needs the other CPU.
 */
import {
  type BigIntStats,
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  openSync,
  readdirSync,
  readlinkSync,
  realpathSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { toWireStat, type WireStat } from './fsstat';
import {
  cleanPath,
  GoPatternError,
  type MatchInfo,
  type Pattern,
  PatternMatcher,
} from './patterns';

export interface WalkOptions {
  readonly includePatterns?: readonly string[] | undefined;
  readonly excludePatterns?: readonly string[] | undefined;
  readonly followPaths?: readonly string[] | undefined;
  /**
   * How a directory's entries are looked up under the open directory (Linux): `proc` (the
   * default) through `/proc/<pid>/fd/<fd>/<name>`; `cwd` by making the open directory the
   * working directory for the synchronous length of each next() call (restored before it
   * returns) and naming entries relative to it, which costs ~1.3 µs less per entry (20k
   * entries: 125 vs 150 ms). `cwd` is for a process of its own that uses no relative path in
   * concurrent asynchronous file operations (the sandboxed ktl); ignored off the main thread.
   */
  readonly lookup?: 'proc' | 'cwd' | undefined;
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

/**
 * The error of an entry of the context that ktl may not read or list (permission denied):
 * the build is refused rather than sent without it.
 */
export function unreadableError(rel: string, what: 'read' | 'listed'): Error {
  return new Error(
    `${rel}: this ${what === 'read' ? 'file' : 'directory'} of the build context cannot be ${what} (permission denied); nothing was built without it: make it readable, or leave it out with .dockerignore`,
  );
}

/** The error of a context that changed under ktl while it was being sent. */
export function contextChangedError(rel: string, why: string): Error {
  return new Error(
    `${rel} changed while the build context was being sent (${why}); nothing of it was sent: run the build again`,
  );
}

// Linux only: /proc/self/fd/N names what fd N is open on, as the kernel resolved it, and
// opening a path through it starts at that file instead of looking its path up again. Other
// systems have no such record: there the walk uses paths as it always did.
const PROC_FD = process.platform === 'linux';

let procFdDir: { pid: number; dir: string } | undefined;

/**
 * `/proc/<pid>/fd/` of this process. Through the pid rather than /proc/self: one symlink less
 * to resolve on every lookup of an entry. The pid is the one /proc/self names, so it is this
 * process in whatever pid namespace that /proc belongs to.
 */
function fdDir(): string {
  if (procFdDir?.pid === process.pid) return procFdDir.dir;
  let self: string;
  try {
    self = readlinkSync('/proc/self');
  } catch (e) {
    throw new Error(
      `sending the build context needs /proc mounted, to check that no directory in it was swapped for a symbolic link: ${(e as Error).message}`,
    );
  }
  procFdDir = { pid: process.pid, dir: `/proc/${self}/fd/` };
  return procFdDir.dir;
}

/**
 * Where the open file `fd` is, as the kernel has it (Linux), or undefined where that cannot
 * be known. A file opened by a path is at that path only if no directory on the way was a
 * symbolic link; one deleted since reads as "<path> (deleted)".
 */
export function openedAt(fd: number): string | undefined {
  return PROC_FD ? readlinkSync(`${fdDir()}${fd}`) : undefined;
}

const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

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

function lstatOrUndefined(abs: string, rel?: string) {
  try {
    return lstatSync(abs, { bigint: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined; // vanished: skip, like fsutil
    // Its directory may be read but not searched (mode r-- for us).
    if (rel !== undefined && (code === 'EACCES' || code === 'EPERM'))
      throw unreadableError(rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '.', 'listed');
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
  /** `include` or `exclude`, for errors worded as fsutil's. */
  readonly kind: string;
  readonly matcher: PatternMatcher;
  /** Every relevant pattern is a plain prefix, so whole directories can be skipped. */
  readonly prefixOnly: boolean;
}

function makeFilter(patterns: readonly string[], exceptions: boolean): Filter | undefined {
  if (patterns.length === 0) return undefined;
  const kind = exceptions ? 'exclude' : 'include';
  let matcher: PatternMatcher;
  try {
    matcher = new PatternMatcher(patterns);
  } catch (e) {
    // fsutil's words (Go's %s of a []string), which buildx users see for the same file.
    throw new Error(`invalid ${kind}patterns: [${patterns.join(' ')}]: ${(e as Error).message}`);
  }
  const prefixOnly = !matcher.patterns.some(
    (p: Pattern) => p.exclusion === exceptions && PATTERN_CHARS.test(p.withoutTrailingGlob()),
  );
  return { kind, matcher, prefixOnly };
}

/** matchesUsingParent, its errors (a regexp Go cannot compile) worded as fsutil's. */
function matchIn(f: Filter, rel: string, parent: MatchInfo) {
  try {
    return f.matcher.matchesUsingParent(rel, parent);
  } catch (e) {
    if (e instanceof GoPatternError)
      throw new Error(`failed to match ${f.kind}patterns: ${e.message}`);
    throw e;
  }
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
  /** What its entries' names are appended to, to look them up: the directory opened and
   * checked (`/proc/<pid>/fd/<fd>/`, Linux) or its path followed by `/`. */
  readonly at: string;
  /** The open directory (Linux), closed once its entries have been visited. */
  readonly fd: number | undefined;
  readonly names: readonly string[];
  next: number;
}

/**
 * The entries to send, in order, a batch at a time: `next(max)` returns up to `max` entries,
 * fewer only at the end (then the walk is done). On Linux the directories being listed are
 * held open, one per level of the current path: each is closed once the walk leaves it, all
 * of them when next() fails, and by close() when the walk is given up before its end.
 */
export class ContextWalker {
  private readonly given: string;
  private root = '';
  private rootSlash = '';
  private inc: Filter | undefined;
  private exc: Filter | undefined;
  private readonly open: OpenDir[] = [];
  private readonly frames: Frame[] = [];
  private readonly inodes = new Map<string, string>();
  private started = false;
  /** lookup `cwd`: the frame whose directory is the working directory now. */
  private cwdFrame: Frame | undefined;
  private finished = false;
  private closed = false;

  constructor(
    root: string,
    private readonly opts: WalkOptions = {},
  ) {
    this.given = resolve(root);
  }

  /** The root, the filters and the root's listing: on the first next(), so that what fails
   * there is reported as a failure of the listing. */
  private start(): void {
    this.started = true;
    // Resolved once: the paths below are built from the real root, so a path with a link on
    // the way to a directory is one that was swapped (see openDir).
    this.root = realpathSync.native(this.given);
    this.rootSlash = this.root.endsWith('/') ? this.root : `${this.root}/`;
    const { opts } = this;
    let includes = [...(opts.includePatterns ?? [])];
    if (opts.followPaths && opts.followPaths.length > 0) {
      // Only patterns come out of this (what is listed is still looked up by the walk).
      const targets = resolveFollowPaths(this.root, opts.followPaths);
      if (targets !== undefined) includes = [...new Set([...includes, ...targets])];
    }
    this.inc = makeFilter(includes, false);
    this.exc = makeFilter(opts.excludePatterns ?? [], true);
    this.frames.push(this.openRoot());
  }

  /** Every entry has been returned by next(). */
  get done(): boolean {
    return this.finished;
  }

  next(max: number): WalkEntry[] {
    if (this.closed) throw new Error('the build context walker was closed');
    const out: WalkEntry[] = [];
    const { frames } = this;
    const byCwd = this.opts.lookup === 'cwd' && isMainThread;
    const cwd = byCwd ? process.cwd() : undefined;
    try {
      if (!this.started) this.start();
      while (out.length < max) {
        const frame = frames[frames.length - 1];
        if (!frame) break;
        if (frame.next >= frame.names.length) {
          this.leave();
          continue;
        }
        const name = frame.names[frame.next]!;
        frame.next++;
        let at = frame.at + name;
        if (byCwd && frame.fd !== undefined) {
          if (this.cwdFrame !== frame) {
            process.chdir(frame.at);
            this.cwdFrame = frame;
          }
          at = name;
        }
        const rel = frame.relSlash + name;
        this.visit(rel, at, lstatOrUndefined(at, rel), out);
      }
      // Leave the directories finished with now: a walk that is over holds nothing open.
      while (
        frames.length > 0 &&
        frames[frames.length - 1]!.next >= frames[frames.length - 1]!.names.length
      )
        this.leave();
      this.finished = frames.length === 0;
    } catch (e) {
      this.close();
      throw e;
    } finally {
      if (cwd !== undefined) {
        process.chdir(cwd);
        this.cwdFrame = undefined;
      }
    }
    return out;
  }

  /** Closes what the walk holds open; next() cannot be called after it. */
  close(): void {
    this.closed = true;
    while (this.frames.length > 0) this.leave();
  }

  private leave(): void {
    const frame = this.frames.pop();
    if (frame?.fd !== undefined) closeSync(frame.fd);
  }

  private openRoot(): Frame {
    if (!PROC_FD)
      return {
        relSlash: '',
        at: this.rootSlash,
        fd: undefined,
        names: listDir(this.root),
        next: 0,
      };
    const fd = openSync(this.root, DIR_FLAGS);
    try {
      if (openedAt(fd) !== this.root)
        throw contextChangedError(this.root, 'a directory on the way to it was swapped or moved');
      const dir = `${fdDir()}${fd}`;
      return { relSlash: '', at: `${dir}/`, fd, names: listDir(dir), next: 0 };
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  /**
   * Directory `rel` opened for its entries, or undefined if it is skipped: vanished, or
   * unreadable but filtered out anyway (both as in fsutil). `at` is where it is looked up and
   * `st` what it was listed as.
   *
   * On Linux it must still be that directory (the inode listed) and still be where it was
   * listed: the kernel's record of the open directory's path is the real root plus `rel` only
   * if no directory on the way to it was swapped for a symbolic link (or moved) since. Else
   * the walk fails rather than list whatever is there now.
   */
  private openDir(rel: string, at: string, st: BigIntStats, skip: boolean): Frame | undefined {
    const relSlash = `${rel}/`;
    const skipped = (e: unknown): boolean => {
      const code = (e as NodeJS.ErrnoException).code;
      return code === 'ENOENT' || (skip && (code === 'EACCES' || code === 'EPERM'));
    };
    const denied = (e: unknown) => {
      const code = (e as NodeJS.ErrnoException).code;
      return code === 'EACCES' || code === 'EPERM';
    };
    if (!PROC_FD) {
      try {
        return { relSlash, at: `${at}/`, fd: undefined, names: listDir(at), next: 0 };
      } catch (e) {
        if (skipped(e) || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
        if (denied(e)) throw unreadableError(rel, 'listed');
        throw e;
      }
    }
    let fd: number;
    try {
      fd = openSync(at, DIR_FLAGS);
    } catch (e) {
      if (skipped(e)) return undefined;
      const code = (e as NodeJS.ErrnoException).code;
      // O_DIRECTORY | O_NOFOLLOW on what is a link or a file now.
      if (code === 'ENOTDIR' || code === 'ELOOP')
        throw contextChangedError(rel, 'it is not a directory now');
      if (denied(e)) throw unreadableError(rel, 'listed');
      throw e;
    }
    try {
      const now = fstatSync(fd, { bigint: true });
      if (now.dev !== st.dev || now.ino !== st.ino)
        throw contextChangedError(rel, 'another directory is there now');
      if (openedAt(fd) !== this.rootSlash + rel)
        throw contextChangedError(rel, 'a directory on the way to it was swapped or moved');
      const dir = `${fdDir()}${fd}`;
      return { relSlash, at: `${dir}/`, fd, names: listDir(dir), next: 0 };
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  /** Entry `rel`, looked up as `at` (through its open parent on Linux), listed as `st`. */
  private visit(rel: string, at: string, st: BigIntStats | undefined, out: WalkEntry[]): void {
    if (!st) return;
    const { inc, exc, open } = this;
    const isDir = st.isDirectory();
    while (open.length > 0 && !rel.startsWith(open[open.length - 1]!.prefix)) open.pop();
    const parent = open[open.length - 1];

    let skip = false;
    let incInfo: MatchInfo;
    let excInfo: MatchInfo;
    if (inc) {
      const r = matchIn(inc, rel, parent?.include);
      incInfo = r.info;
      if (!r.matched) {
        if (isDir && inc.prefixOnly && !mayMatchInside(inc, rel, false)) return;
        skip = true;
      }
    }
    if (exc) {
      const r = matchIn(exc, rel, parent?.exclude);
      excInfo = r.info;
      if (r.matched) {
        if (isDir && exc.prefixOnly) {
          if (!exc.matcher.hasExclusions || !mayMatchInside(exc, rel, true)) return;
        }
        skip = true;
      }
    }

    let linkTarget: string | undefined;
    if (st.isSymbolicLink()) {
      try {
        linkTarget = readlinkSync(at);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') return; // vanished: skip, like fsutil
        if (code === 'EINVAL') throw contextChangedError(rel, 'it is not a symbolic link now');
        throw e;
      }
    }
    const entry: WalkEntry = {
      stat: toWireStat(rel, st, linkTarget),
      abs: this.rootSlash + rel,
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
        // The size stays the file's (fsutil's mkstat sets it after the link name).
        if (first !== undefined) entry.stat.linkname = first;
        else this.inodes.set(key, rel);
      }
      out.push(entry);
    }
    if (!isDir) return;
    open.push({ prefix: `${rel}/`, include: incInfo, exclude: excInfo, entry, listed: !skip });
    const frame = this.openDir(rel, at, st, skip);
    if (frame) this.frames.push(frame);
  }
}

/** The whole listing at once (tests, small trees). */
export function walkContext(root: string, opts: WalkOptions = {}): WalkEntry[] {
  const walker = new ContextWalker(root, opts);
  const all: WalkEntry[] = [];
  while (!walker.done) all.push(...walker.next(1024));
  return all;
}
