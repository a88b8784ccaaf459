/**
 * Which host paths a sandboxed `ktl build` needs, read from its own command line: the context
 * and everything else named on it, and nothing more. Each path is bound at the same place
 * inside the jail, so paths on the command line keep their meaning there.
 *
 * A path typed inside the current directory must also *be* inside it: a symlink in the
 * working tree (which may be an untrusted repository) that points out of it would turn
 * `--build-context assets=./assets` into a bind of whatever host directory the link names.
 * Such a path is refused; naming the target itself (or --sandbox-bind) is the explicit way.
 */
import { existsSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import type { BuildOptions } from '../build/options';

export interface PlannedBind {
  src: string;
  dst: string;
  readonly: boolean;
  /** Why it is there, for --sandbox-logs and errors. */
  why: string;
}

export class BindPlanError extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
    this.name = 'BindPlanError';
  }
}

/** The real path, so a symlink in a user-given path cannot point the bind somewhere else later. */
function real(p: string, cwd: string): string {
  const abs = isAbsolute(p) ? p : resolve(cwd, p);
  if (existsSync(abs)) return realpathSync(abs);
  // Not there yet (an output): the real path of the nearest existing ancestor, plus the rest.
  const parent = dirname(abs);
  return parent === abs ? abs : join(real(parent, cwd), basename(abs));
}

const under = (p: string, dir: string) => p === dir || p.startsWith(dir === '/' ? '/' : `${dir}/`);

/** Refuses a path typed inside `cwd` whose real path leaves it (a symlink out of the tree). */
function refuseEscape(
  typed: string,
  src: string,
  cwd: string,
  why: string,
  readonly: boolean,
): void {
  const abs = isAbsolute(typed) ? typed : resolve(cwd, typed);
  const cwdReal = existsSync(cwd) ? realpathSync(cwd) : cwd;
  if ((under(abs, cwd) || under(abs, cwdReal)) && !under(src, cwdReal)) {
    throw new BindPlanError(
      `${why}: ${typed} is inside the current directory but resolves to ${src}, outside it (a symlink); the sandbox does not follow links out of the working tree`,
      `if you mean to share ${src}, name it directly or add --sandbox-bind ${src}:${src}:${readonly ? 'ro' : 'rw'}`,
    );
  }
}

/** What a build reads and writes on the host, from the parsed command line. */
export type BindInputs = Pick<
  BuildOptions,
  'contextDir' | 'dockerfile' | 'buildContexts' | 'secrets' | 'outputs' | 'iidfile' | 'metadataFile'
> &
  Partial<Pick<BuildOptions, 'ssh' | 'cacheFrom' | 'cacheTo'>>;

/**
 * Plans binds for a parsed `ktl build` command line (paths are absolute, as typed, not yet
 * resolved through symlinks) plus its --sandbox-bind values. Output destinations must exist
 * before binding (a bind needs something to bind); `ensureDirs` lists what the caller creates.
 */
export function planBuildBinds(
  o: BindInputs,
  sandboxBinds: readonly string[],
  cwd: string,
): { binds: PlannedBind[]; ensureDirs: string[] } {
  const binds: PlannedBind[] = [];
  const ensureDirs: string[] = [];
  const add = (path: string, readonly: boolean, why: string) => {
    const s = real(path, cwd);
    refuseEscape(path, s, cwd, why, readonly);
    binds.push({ src: s, dst: path, readonly, why });
  };
  const inContext = (p: string) => p === o.contextDir || p.startsWith(`${o.contextDir}/`);
  add(o.contextDir, true, 'build context');
  // A Dockerfile inside the context comes with it (the bind would only repeat it), but a
  // link out of the tree is refused all the same, rather than failing obscurely inside.
  if (o.dockerfile !== '-') {
    if (!inContext(o.dockerfile)) add(o.dockerfile, true, 'Dockerfile');
    else refuseEscape(o.dockerfile, real(o.dockerfile, cwd), cwd, 'Dockerfile', true);
  }
  for (const [name, src] of Object.entries(o.buildContexts)) {
    if (isAbsolute(src)) add(src, true, `named context ${name}`);
  }
  for (const sec of o.secrets) {
    if ('file' in sec.source) add(sec.source.file, true, `secret ${sec.id}`);
  }
  // An agent socket is bound itself (a socket file can be bind-mounted), read-write: connecting
  // to a unix socket needs write permission on it. Nothing else of its directory comes along.
  for (const [id, sock] of Object.entries(o.ssh ?? {})) add(sock, false, `ssh agent ${id}`);
  for (const spec of o.outputs) {
    if (spec.type === 'image' || spec.type === 'cacheonly') continue;
    // Directories are bound themselves; a file destination through its parent directory.
    const dir =
      spec.type === 'local' || (spec.type === 'oci' && spec.attrs.tar === 'false')
        ? spec.dest
        : dirname(spec.dest);
    ensureDirs.push(dir);
    add(dir, false, `output ${spec.type}`);
  }
  // Local caches are served by the jailed ktl (the daemon reads and writes them through the
  // session): an export's directory read-write, an import's read-only. An import that is also
  // an export's directory comes with the read-write bind; one that does not exist yet is no
  // cache at all (the build goes on without it, with a warning) and is not bound.
  const cacheDests = new Set<string>();
  for (const c of o.cacheTo ?? []) {
    const dest = c.type === 'local' ? c.attrs?.dest : undefined;
    if (dest === undefined || cacheDests.has(dest)) continue;
    cacheDests.add(dest);
    ensureDirs.push(dest);
    add(dest, false, 'cache export (local)');
  }
  for (const c of o.cacheFrom ?? []) {
    const src = c.type === 'local' ? c.attrs?.src : undefined;
    if (src === undefined || cacheDests.has(src) || !existsSync(src)) continue;
    add(src, true, 'cache import (local)');
  }
  // --iidfile and --metadata-file are written by the outer ktl (it receives the Solve's
  // response), never by the jail: nothing is bound for them. A link out of the working tree is
  // refused all the same, as for every path typed on the command line.
  for (const [file, why] of [
    [o.iidfile, 'iidfile'],
    [o.metadataFile, 'metadata-file'],
  ] as const) {
    if (file !== undefined) refuseEscape(dirname(file), real(dirname(file), cwd), cwd, why, false);
  }
  for (const value of sandboxBinds) {
    const [src, dst, mode, ...extra] = value.split(':');
    if (
      !src ||
      !dst ||
      extra.length > 0 ||
      (mode !== undefined && mode !== 'ro' && mode !== 'rw')
    ) {
      throw new BindPlanError(
        `--sandbox-bind ${value}: expected HOST:GUEST[:ro|rw]`,
        'e.g. --sandbox-bind /srv/certs:/certs:ro',
      );
    }
    if (!isAbsolute(dst))
      throw new BindPlanError(
        `--sandbox-bind ${value}: GUEST must be an absolute path`,
        'e.g. --sandbox-bind ./certs:/certs:ro',
      );
    if (!existsSync(resolve(cwd, src)))
      throw new BindPlanError(
        `--sandbox-bind ${value}: ${resolve(cwd, src)} does not exist`,
        'create it or fix the path',
      );
    binds.push({ src: real(src, cwd), dst, readonly: mode === 'ro', why: '--sandbox-bind' });
  }
  for (const b of binds) {
    if (b.readonly && !existsSync(b.src)) {
      throw new BindPlanError(
        `${b.why}: ${b.src} does not exist`,
        'check the path on the command line',
      );
    }
    if (b.why === 'build context' && !statSync(b.src).isDirectory()) {
      throw new BindPlanError(
        `build context ${b.src} is not a directory`,
        'pass the directory that holds the Dockerfile',
      );
    }
  }
  return { binds: onePerGuestPath(binds), ensureDirs: [...new Set(ensureDirs)] };
}

/**
 * One bind per guest path. The same host path named twice (two outputs in one directory, one
 * agent socket under two ids, a tar beside a local export) is bound once, read-write if any of
 * its uses writes: nsjail cannot bind a mount point twice (the build failed with exit 71).
 * Two host paths wanted at one guest path are refused: one would silently hide the other.
 */
function onePerGuestPath(binds: readonly PlannedBind[]): PlannedBind[] {
  const byGuest = new Map<string, PlannedBind>();
  for (const b of binds) {
    const seen = byGuest.get(b.dst);
    if (!seen) {
      byGuest.set(b.dst, b);
      continue;
    }
    if (seen.src !== b.src) {
      throw new BindPlanError(
        `${seen.why} and ${b.why} both want ${b.dst} inside the sandbox (from ${seen.src} and ${b.src})`,
        'give one of them another path',
      );
    }
    byGuest.set(b.dst, {
      ...seen,
      readonly: seen.readonly && b.readonly,
      why: seen.why.split(', ').includes(b.why) ? seen.why : `${seen.why}, ${b.why}`,
    });
  }
  return [...byGuest.values()];
}

/**
 * Sorts binds (in place) so that each comes before those inside it (a tar's directory around
 * a local export, say): one made after a bind below it covers it under bubblewrap and cannot
 * be remounted under nsjail (exit 71). Fewest path segments first; the order is otherwise kept.
 */
export function inMountOrder<T extends { dst: string }>(binds: T[]): T[] {
  const depth = (p: string) => p.split('/').length;
  return binds.sort((x, y) => depth(x.dst) - depth(y.dst));
}
