/**
 * Resolving a path from the command line the way the kernel would, one component at a time,
 * so that every symlink met on the way is seen and judged — and pinning what it leads to.
 *
 * The rule (docs/sandbox.md, "The rule for paths"): a symlink that lies inside the repository
 * being built may only lead to somewhere inside that repository. "The repository" of a link is
 * the innermost git work tree (a directory holding `.git`) that holds it; outside any work
 * tree, the build's own roots (the context directory and the Dockerfile's directory) stand in
 * for it. Links above all of these (`/home -> /mnt/disk/home`, a checkout reached through a
 * link in the user's own layout) are the user's, and followed.
 *
 * Each component is opened with O_PATH|O_NOFOLLOW relative to the directory before it (openat
 * spelled `/proc/self/fd/DIR/NAME`, since Node has no openat), so a concurrent writer cannot
 * swap a checked directory for a link between the check and the use: the last descriptor is
 * the thing the sandbox binds, and its device and inode are what the jailed ktl verifies.
 *
 * Linux only (O_PATH, /proc/self/fd): the sandbox runs nowhere else.
 */
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readlinkSync,
} from 'node:fs';

/** O_PATH on Linux (every architecture Node runs on); Node's fs.constants lacks it. */
const O_PATH = 0o10000000;
/** Links followed in one resolution before giving up, as the kernel's ELOOP (40). */
const MAX_LINKS = 40;

export type PinnedKind = 'dir' | 'file' | 'socket' | 'other';

/** A path resolved and pinned: the deepest existing component, held open. */
export interface Pinned {
  /** O_PATH descriptor of the deepest existing component (the caller closes it). */
  readonly fd: number;
  /** Its real path (no symlink left in it). */
  readonly real: string;
  readonly dev: bigint;
  readonly ino: bigint;
  readonly kind: PinnedKind;
  /** Plain names below it that do not exist yet (an output not made yet), in order. */
  readonly missing: readonly string[];
}

/** A path the sandbox refuses, or cannot bind: exit 2, with what to do. */
export class BindPlanError extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
    this.name = 'BindPlanError';
  }
}

interface Frame {
  readonly fd: number;
  readonly name: string;
  readonly dev: bigint;
  readonly ino: bigint;
  /** Set when this directory is a git work tree or one of the build's roots. */
  readonly fence: 'git' | 'root' | undefined;
}

const key = (dev: bigint, ino: bigint) => `${dev}:${ino}`;
const at = (dirFd: number, name: string) => `/proc/self/fd/${dirFd}/${name}`;

function kindOf(st: {
  isDirectory(): boolean;
  isFile(): boolean;
  isSocket(): boolean;
}): PinnedKind {
  return st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSocket() ? 'socket' : 'other';
}

function pathOf(stack: readonly Frame[]): string {
  return stack.length <= 1 ? '/' : stack.map((f) => f.name).join('/');
}

/** `dir/name`, and `/name` under the root. */
const child = (dir: string, ...names: string[]) => [dir === '/' ? '' : dir, ...names].join('/');

/**
 * Resolves absolute paths under the rule. Roots (the context, the Dockerfile's directory) are
 * added once they are themselves resolved; `.git` lookups are remembered per directory.
 */
export class PathResolver {
  /** Fences outside git work trees, by identity: what each is, for messages. */
  private readonly roots = new Map<string, string>();
  private readonly gitTrees = new Map<string, boolean>();

  /** Makes a resolved directory one of the build's roots (a fence outside any work tree). */
  addRoot(p: Pinned): void {
    if (p.kind === 'dir' && p.missing.length === 0)
      this.roots.set(key(p.dev, p.ino), 'the build directory');
  }

  /**
   * Makes a directory a fence by identity, named `label` in errors: a directory an earlier
   * build exported to (its links were made by that build, not by the user).
   */
  addFence(dev: bigint, ino: bigint, label: string): void {
    this.roots.set(key(dev, ino), label);
  }

  private isGitTree(fd: number, dev: bigint, ino: bigint): boolean {
    const k = key(dev, ino);
    let known = this.gitTrees.get(k);
    if (known === undefined) {
      try {
        lstatSync(at(fd, '.git'));
        known = true;
      } catch {
        known = false;
      }
      this.gitTrees.set(k, known);
    }
    return known;
  }

  /**
   * Resolves `abs` (absolute and lexically normal, as the command line's paths are made) and
   * pins its deepest existing component. `what` names the flag for errors ("build context").
   * Throws BindPlanError for a link out of its repository, a loop, or a name under a file.
   */
  resolve(abs: string, what: string): Pinned {
    const stack: Frame[] = [];
    const push = (fd: number, name: string) => {
      const st = fstatSync(fd, { bigint: true });
      const fence = this.isGitTree(fd, st.dev, st.ino)
        ? 'git'
        : this.roots.has(key(st.dev, st.ino))
          ? 'root'
          : undefined;
      stack.push({ fd, name, dev: st.dev, ino: st.ino, fence });
    };
    const pop = () => {
      if (stack.length > 1) closeSync(stack.pop()!.fd);
    };
    push(openSync('/', O_PATH), '');
    // Components still to walk; a link's target is put in front of the rest.
    const queue = abs.split('/').filter((c) => c !== '' && c !== '.');
    // Links being followed: each must end inside its fence once its target is walked.
    const pending: {
      until: number;
      link: string;
      target: string;
      fence: Frame;
      fencePath: string;
    }[] = [];
    let result: Pinned | undefined;
    let links = 0;
    const checkPending = (missing: readonly string[]) => {
      while (pending.length > 0 && queue.length <= pending[pending.length - 1]!.until) {
        const p = pending.pop()!;
        if (stack.some((f) => f.dev === p.fence.dev && f.ino === p.fence.ino)) continue;
        const where = missing.length > 0 ? child(pathOf(stack), ...missing) : pathOf(stack);
        const kind =
          p.fence.fence === 'git'
            ? 'the git work tree'
            : (this.roots.get(key(p.fence.dev, p.fence.ino)) ?? 'the build directory');
        throw new BindPlanError(
          `${what}: ${abs}: the symlink ${p.link} -> ${p.target} leads out of ${kind} ${p.fencePath} (to ${where})`,
          `the sandbox follows no link out of the repository being built; to share ${where}, name it directly, or bind it with --sandbox-bind ${where}:GUEST and name GUEST`,
        );
      }
    };
    try {
      while (queue.length > 0) {
        const name = queue.shift()!;
        if (name === '.') {
          checkPending([]);
          continue;
        }
        if (name === '..') {
          pop();
          checkPending([]);
          continue;
        }
        const top = stack[stack.length - 1]!;
        let fd: number;
        try {
          fd = openSync(at(top.fd, name), O_PATH | constants.O_NOFOLLOW);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') {
            const rest = [name, ...queue].filter((c) => c !== '.');
            if (rest.includes('..')) {
              throw new BindPlanError(
                `${what}: ${abs}: ${child(pathOf(stack), name)} does not exist`,
                'create it, or name a path without ".." below what does not exist',
              );
            }
            queue.length = 0;
            checkPending(rest);
            result = this.pinned(stack, rest);
            return result;
          }
          if (code === 'ENOTDIR') {
            throw new BindPlanError(
              `${what}: ${abs}: ${pathOf(stack)} is not a directory`,
              'check the path on the command line',
            );
          }
          throw e;
        }
        const st = fstatSync(fd, { bigint: true });
        if (!st.isSymbolicLink()) {
          if (queue.length > 0 && !st.isDirectory()) {
            closeSync(fd);
            throw new BindPlanError(
              `${what}: ${abs}: ${child(pathOf(stack), name)} is not a directory`,
              'check the path on the command line',
            );
          }
          push(fd, name);
          checkPending([]);
          continue;
        }
        closeSync(fd);
        if (++links > MAX_LINKS) {
          throw new BindPlanError(
            `${what}: ${abs}: more than ${MAX_LINKS} symlinks (a loop?)`,
            'check the links on the path',
          );
        }
        // The link's own text, read through the directory it was found in.
        const target = readlinkSync(at(top.fd, name));
        const link = child(pathOf(stack), name);
        // The innermost work tree around the link; outside any, the innermost build root.
        const gi = stack.findLastIndex((f) => f.fence === 'git');
        const fi = gi >= 0 ? gi : stack.findLastIndex((f) => f.fence === 'root');
        if (fi >= 0)
          pending.push({
            until: queue.length,
            link,
            target,
            fence: stack[fi]!,
            fencePath: pathOf(stack.slice(0, fi + 1)),
          });
        if (target.startsWith('/')) while (stack.length > 1) pop();
        queue.unshift(...target.split('/').filter((c) => c !== ''));
        checkPending([]);
      }
      result = this.pinned(stack, []);
      return result;
    } finally {
      // Everything but the descriptor the result holds (on error: all).
      for (const f of stack) if (f.fd !== result?.fd) closeSync(f.fd);
    }
  }

  private pinned(stack: Frame[], missing: readonly string[]): Pinned {
    const top = stack[stack.length - 1]!;
    const st = fstatSync(top.fd, { bigint: true });
    return {
      fd: top.fd,
      real: pathOf(stack),
      dev: top.dev,
      ino: top.ino,
      kind: kindOf(st),
      missing,
    };
  }
}

/**
 * Makes the directories `p.missing` names under the pinned directory, each relative to the
 * one before (mkdirat), and pins the last. The old descriptor is closed; the caller owns the
 * new one. A name that turns out not to be a directory once made (swapped) is an error.
 */
export function makeMissing(p: Pinned, what: string): Pinned {
  let fd = p.fd;
  let real = p.real;
  try {
    for (const name of p.missing) {
      try {
        mkdirSync(at(fd, name));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const next = openSync(at(fd, name), O_PATH | constants.O_NOFOLLOW);
      closeSync(fd);
      fd = next;
      real = real === '/' ? `/${name}` : `${real}/${name}`;
      if (!fstatSync(fd, { bigint: true }).isDirectory()) {
        throw new BindPlanError(
          `${what}: ${real} is not a directory`,
          'remove what is there or name another directory',
        );
      }
    }
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  const st = fstatSync(fd, { bigint: true });
  return { fd, real, dev: st.dev, ino: st.ino, kind: 'dir', missing: [] };
}
