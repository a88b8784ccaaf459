/**
 * A directory tree, file by file (type, mode, size, mtime, content hash, link target, inode),
 * for comparing what ktl exported with what `docker buildx build` exported from the same build.
 * Shared by the library's and the CLI's comparison tests.
 */
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

export interface Entry {
  type: 'file' | 'dir' | 'link';
  mode: number;
  size: number;
  mtimeMs: number;
  content?: string;
  target?: string;
  ino: number;
}

export function snapshot(root: string): Map<string, Entry> {
  const out = new Map<string, Entry>();
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const abs = join(root, r);
      const st = lstatSync(abs);
      const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : 'file';
      out.set(r, {
        type,
        mode: st.mode & 0o7777,
        size: type === 'file' ? st.size : 0,
        mtimeMs: Math.floor(st.mtimeMs),
        ino: st.ino,
        ...(type === 'file'
          ? { content: createHash('sha256').update(readFileSync(abs)).digest('hex') }
          : {}),
        ...(type === 'link' ? { target: readlinkSync(abs) } : {}),
      });
      if (type === 'dir') walk(r);
    }
  };
  walk('');
  return out;
}

/** Groups of paths sharing an inode (hardlinks), as sorted path lists. */
export function linkGroups(s: Map<string, Entry>): string[][] {
  const by = new Map<number, string[]>();
  for (const [p, e] of s) if (e.type === 'file') by.set(e.ino, [...(by.get(e.ino) ?? []), p]);
  return [...by.values()].filter((g) => g.length > 1).map((g) => g.sort());
}

/**
 * The two trees as comparable rows: same paths, and per path the same entry except the inode
 * (and, with `dirTimes: false`, a directory's mtime, which depends on when the receiver
 * finished writing into it).
 */
export function comparable(
  s: Map<string, Entry>,
  opts: { dirTimes?: boolean } = {},
): Array<Record<string, unknown>> {
  return [...s].map(([p, e]) => {
    const { ino: _ino, ...rest } = e;
    return { p, ...rest, ...(e.type === 'dir' && !opts.dirTimes ? { mtimeMs: 0 } : {}) };
  });
}
