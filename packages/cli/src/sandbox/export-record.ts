/**
 * Where ktl's local exports went. A directory a build exported to holds what that build chose,
 * links included: `out/meta -> /some/host/dir` is the repository's doing, not the user's
 * layout. The outer ktl records each local export's directory (by device and inode) after a
 * sandboxed build, in ktl's state directory (never bound into the jail), and the bind plan
 * treats each recorded directory as a fence: a link inside it may only lead inside it, like a
 * link inside the repository.
 */
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ktlStateDir } from './engine-sockets';

type Env = Readonly<Record<string, string | undefined>>;

export interface ExportRoot {
  readonly path: string;
  readonly dev: bigint;
  readonly ino: bigint;
}

/** The newest entries kept. */
const MAX_ENTRIES = 512;

const file = (env: Env) => join(ktlStateDir(env), 'exports.json');

/** The recorded export directories (none when there is no record or it is unreadable). */
export function readExportRoots(env: Env): ExportRoot[] {
  try {
    const raw = JSON.parse(readFileSync(file(env), 'utf8')) as unknown;
    if (!Array.isArray(raw)) return [];
    return raw.flatMap((e: { path?: unknown; dev?: unknown; ino?: unknown }) =>
      typeof e?.path === 'string' && typeof e.dev === 'string' && typeof e.ino === 'string'
        ? [{ path: e.path, dev: BigInt(e.dev), ino: BigInt(e.ino) }]
        : [],
    );
  } catch {
    return [];
  }
}

/**
 * Adds export directories to the record (newest last, one entry per identity, at most
 * MAX_ENTRIES), written whole under a temporary name. The state directory is made when its
 * parent exists; a record that cannot be written is given up quietly (it only strengthens
 * later plans).
 */
export function recordExportRoots(env: Env, roots: readonly ExportRoot[]): void {
  if (roots.length === 0) return;
  const f = file(env);
  try {
    const dir = dirname(f);
    statSync(dirname(dir));
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const ids = new Set(roots.map((r) => `${r.dev}:${r.ino}`));
    const kept = readExportRoots(env).filter((r) => !ids.has(`${r.dev}:${r.ino}`));
    const all = [...kept, ...roots].slice(-MAX_ENTRIES);
    const text = JSON.stringify(
      all.map((r) => ({ path: r.path, dev: String(r.dev), ino: String(r.ino) })),
    );
    const tmp = `${f}.${process.pid}.partial`;
    writeFileSync(tmp, text, { mode: 0o600 });
    renameSync(tmp, f);
  } catch {
    // No state directory to keep it in: later plans go without this record.
  }
}
