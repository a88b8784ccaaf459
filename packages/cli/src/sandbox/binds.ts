/**
 * Which host paths a sandboxed `ktl build` needs, read from its own command line: the context
 * and everything else named on it, and nothing more. Each path is bound at the same place
 * inside the jail, so paths on the command line keep their meaning there.
 *
 * Every path is resolved under one rule, whatever the working directory (src/sandbox/resolve.ts):
 * a symlink inside the repository being built may only lead to somewhere inside it. Each
 * source is pinned when checked (a descriptor held open), bound from that, and verified by
 * device and inode inside the jail before anything is served, so what is mounted is what was
 * checked. Engine sockets under a bound directory are masked; an engine socket named as an
 * ssh agent is refused.
 */
import { closeSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { BuildOptions } from '../build/options';
import { type EngineSocket, engineSockets, managedBuilderDir } from './engine-sockets';
import { readExportRoots } from './export-record';
import { BindPlanError, makeMissing, PathResolver, type Pinned } from './resolve';

export { BindPlanError };

export interface PlannedBind {
  /** The real host path of what is bound (the pinned descriptor's). */
  src: string;
  dst: string;
  readonly: boolean;
  /** Why it is there, for --sandbox-logs and errors. */
  why: string;
  /** The pinned source; names in `pin.missing` are made by makeBindDirs. */
  pin: Pinned;
}

/** Something hidden inside the jail: an engine socket (an empty file over it) or directory. */
export interface Mask {
  dst: string;
  kind: 'file' | 'dir';
  why: string;
}

export interface BindPlan {
  binds: PlannedBind[];
  /** Directories the outer ktl itself writes into (--iidfile, --metadata-file), by path. */
  outerDirs: Map<string, Pinned>;
  masks: Mask[];
  /** The engine sockets known on this host (for the jailed ktl's self-check). */
  engines: EngineSocket[];
  /**
   * File outputs (`-o type=tar|docker|oci,dest=FILE`), by index in the options' outputs: the
   * destination's directory pinned, for the move into place after the build.
   */
  fileOutputs: { index: number; dest: string; dir: Pinned }[];
}

/** What a build reads and writes on the host, from the parsed command line. */
export type BindInputs = Pick<
  BuildOptions,
  'contextDir' | 'dockerfile' | 'buildContexts' | 'secrets' | 'outputs' | 'iidfile' | 'metadataFile'
> &
  Partial<Pick<BuildOptions, 'ssh' | 'cacheFrom' | 'cacheTo' | 'builder'>>;

const under = (p: string, dir: string) => p === dir || p.startsWith(dir === '/' ? '/' : `${dir}/`);
const full = (p: Pinned) =>
  p.missing.length === 0 ? p.real : [p.real === '/' ? '' : p.real, ...p.missing].join('/');

interface Guest {
  value: string;
  host: string;
  guest: string;
  readonly: boolean;
}

/** --sandbox-bind HOST:GUEST[:ro|rw] values, checked for form (the host side is resolved later). */
export function parseSandboxBinds(values: readonly string[], cwd: string): Guest[] {
  return values.map((value) => {
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
    return { value, host: resolve(cwd, src), guest: resolve(dst), readonly: mode === 'ro' };
  });
}

/**
 * Where a command-line path is on the host: a path under a --sandbox-bind GUEST names what is
 * bound there (so `--sandbox-bind /srv/certs:/certs --secret id=ca,src=/certs/ca.pem` works).
 */
export function hostPathOf(p: string, guests: readonly Guest[]): { host: string; guest?: Guest } {
  // The innermost guest path wins, as the innermost mount does inside.
  const g = [...guests]
    .sort((a, b) => b.guest.length - a.guest.length)
    .find((x) => under(p, x.guest));
  return g ? { host: g.host + p.slice(g.guest.length), guest: g } : { host: p };
}

/**
 * Plans binds for a parsed `ktl build` command line (paths absolute and lexically normal, as
 * the options hold them) plus its --sandbox-bind values. Nothing is made on the host: outputs
 * that do not exist yet keep their missing names for makeBindDirs. On error every descriptor
 * opened so far is closed again.
 */
export function planBuildBinds(
  o: BindInputs,
  sandboxBinds: readonly string[],
  cwd: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): BindPlan {
  const guests = parseSandboxBinds(sandboxBinds, cwd);
  const resolver = new PathResolver();
  // Directories earlier builds exported to: their links are a build's doing, not the user's.
  for (const r of readExportRoots(env))
    resolver.addFence(r.dev, r.ino, `the directory an earlier build exported to, ${r.path},`);
  const opened: Pinned[] = [];
  const pin = (p: string, what: string) => {
    const r = resolver.resolve(p, what);
    opened.push(r);
    return r;
  };
  const binds: PlannedBind[] = [];
  const plan: BindPlan = {
    binds,
    outerDirs: new Map(),
    masks: [],
    engines: [],
    fileOutputs: [],
  };
  try {
    const need = (r: Pinned, what: string, kind: 'dir' | 'file' | 'socket', typed: string) => {
      if (r.missing.length > 0)
        throw new BindPlanError(
          `${what}: ${typed} does not exist`,
          'check the path on the command line',
        );
      if (r.kind !== kind)
        throw new BindPlanError(
          `${what}: ${typed} is not a ${kind === 'dir' ? 'directory' : kind === 'file' ? 'file' : 'unix socket'}`,
          'check the path on the command line',
        );
    };
    /** Resolves, checks and (unless a --sandbox-bind covers it) binds one path. */
    const add = (
      path: string,
      readonly: boolean,
      why: string,
      kind?: 'dir' | 'file' | 'socket',
    ): Pinned => {
      const { host, guest } = hostPathOf(path, guests);
      const r = pin(host, why);
      if (kind) need(r, why, kind, path);
      if (guest) {
        if (!readonly && guest.readonly)
          throw new BindPlanError(
            `${why}: ${path} is under --sandbox-bind ${guest.value}, which is read-only`,
            `bind it read-write (${guest.host}:${guest.guest}:rw) or write elsewhere`,
          );
      } else binds.push({ src: full(r), dst: path, readonly, why, pin: r });
      return r;
    };
    const inContext = (p: string) => p === o.contextDir || p.startsWith(`${o.contextDir}/`);
    // The build's roots first: outside any git work tree they are "the repository" whose
    // links may not lead out. The Dockerfile's directory before the context, so a context
    // that is itself a link beside the Dockerfile is judged too.
    const dockerfileOutside = o.dockerfile !== '-' && !inContext(o.dockerfile);
    if (dockerfileOutside) {
      const d = pin(hostPathOf(dirname(o.dockerfile), guests).host, 'Dockerfile');
      need(d, 'Dockerfile', 'dir', dirname(o.dockerfile));
      resolver.addRoot(d);
    }
    const ctx = add(o.contextDir, true, 'build context', 'dir');
    resolver.addRoot(ctx);
    // A Dockerfile inside the context comes with it (the bind would only repeat it), but it
    // is checked all the same, rather than failing obscurely inside.
    if (dockerfileOutside) {
      add(o.dockerfile, true, 'Dockerfile', 'file');
      // The frontend reads <Dockerfile>.dockerignore beside it, before the context's own: it
      // must be there inside too. Only when it exists (and, as every path, by the path rule).
      const ignore = `${o.dockerfile}.dockerignore`;
      if (pin(hostPathOf(ignore, guests).host, 'Dockerfile').missing.length === 0)
        add(ignore, true, "the Dockerfile's .dockerignore", 'file');
    } else if (o.dockerfile !== '-')
      need(
        pin(hostPathOf(o.dockerfile, guests).host, 'Dockerfile'),
        'Dockerfile',
        'file',
        o.dockerfile,
      );
    for (const [name, src] of Object.entries(o.buildContexts)) {
      if (isAbsolute(src)) add(src, true, `named context ${name}`, 'dir');
    }
    for (const sec of o.secrets) {
      if ('file' in sec.source) add(sec.source.file, true, `secret ${sec.id}`, 'file');
    }
    plan.engines = engineSockets(env, o.builder);
    // An agent socket is bound itself (a socket file can be bind-mounted), read-write: connecting
    // to a unix socket needs write permission on it. Nothing else of its directory comes along.
    for (const [id, sock] of Object.entries(o.ssh ?? {})) {
      const r = add(sock, false, `ssh agent ${id}`, 'socket');
      const engine = plan.engines.find((e) => e.dev === r.dev && e.ino === r.ino);
      if (engine)
        throw new BindPlanError(
          `ssh agent ${id}: ${sock} is the engine socket ${engine.path}, not an ssh agent`,
          'forward an ssh agent (ssh-add -l shows its keys): an engine socket in the sandbox would give the build the host',
        );
    }
    /** What the build writes: each pinned, with the path as typed. */
    const written: { pin: Pinned; typed: string }[] = [];
    o.outputs.forEach((spec, index) => {
      if (spec.type === 'image' || spec.type === 'cacheonly') return;
      const isDir = spec.type === 'local' || (spec.type === 'oci' && spec.attrs.tar === 'false');
      if (isDir) {
        // A directory output is bound itself, read-write.
        const r = add(spec.dest, false, `output ${spec.type}`);
        if (r.missing.length === 0 && r.kind !== 'dir')
          throw new BindPlanError(
            `output ${spec.type}: ${spec.dest} is not a directory`,
            'name a directory',
          );
        written.push({ pin: r, typed: spec.dest });
        return;
      }
      // A file output (a tar, an image archive) is written inside the jail to a private
      // directory and moved into place by the outer ktl once the build succeeded: its
      // directory (the context, often) stays read-only inside. Pinned now, like --iidfile's.
      const dir = dirname(spec.dest);
      const { host, guest } = hostPathOf(dir, guests);
      if (guest?.readonly)
        throw new BindPlanError(
          `output ${spec.type}: ${spec.dest} is under --sandbox-bind ${guest.value}, which is read-only`,
          `bind it read-write (${guest.host}:${guest.guest}:rw) or write elsewhere`,
        );
      const r = pin(host, `output ${spec.type}`);
      if (r.missing.length === 0 && r.kind !== 'dir')
        throw new BindPlanError(
          `output ${spec.type}: ${dir} is not a directory`,
          'name a directory',
        );
      plan.fileOutputs.push({ index, dest: spec.dest, dir: r });
    });
    // Local caches are served by the jailed ktl (the daemon reads and writes them through the
    // session): an export's directory read-write, an import's read-only. An import that is also
    // an export's directory comes with the read-write bind; one that does not exist yet is no
    // cache at all (the build goes on without it, with a warning) and is not bound.
    const cacheDests = new Set<string>();
    for (const c of o.cacheTo ?? []) {
      const dest = c.type === 'local' ? c.attrs?.dest : undefined;
      if (dest === undefined || cacheDests.has(dest)) continue;
      cacheDests.add(dest);
      written.push({ pin: add(dest, false, 'cache export (local)'), typed: dest });
    }
    for (const c of o.cacheFrom ?? []) {
      const src = c.type === 'local' ? c.attrs?.src : undefined;
      if (src === undefined || cacheDests.has(src)) continue;
      const r = pin(hostPathOf(src, guests).host, 'cache import (local)');
      if (r.missing.length === 0) add(src, true, 'cache import (local)', 'dir');
    }
    // --iidfile and --metadata-file are written by the outer ktl (it receives the Solve's
    // response), never by the jail: their directories are pinned now and written through the
    // descriptor. Inside an output directory the build itself could have made a link there.
    for (const [file, why] of [
      [o.iidfile, 'iidfile'],
      [o.metadataFile, 'metadata-file'],
    ] as const) {
      if (file === undefined) continue;
      const dir = dirname(file);
      const r = pin(hostPathOf(dir, guests).host, why);
      if (r.missing.length === 0 && r.kind !== 'dir')
        throw new BindPlanError(`${why}: ${dir} is not a directory`, 'check the path');
      // Inside by where it leads or by how it is typed: a link an earlier build left in the
      // output directory leads elsewhere, and this build may replace it.
      const into = written.find((w) => under(full(r), full(w.pin)) || under(dir, w.typed));
      if (into)
        throw new BindPlanError(
          `${why}: ${file} is inside ${into.typed}, which the build writes`,
          `write it beside the output (e.g. ${dirname(into.typed)}/${file.split('/').pop()})`,
        );
      plan.outerDirs.set(dir, r);
    }
    for (const g of guests) {
      const r = pin(g.host, '--sandbox-bind');
      if (r.missing.length > 0)
        throw new BindPlanError(
          `--sandbox-bind ${g.value}: ${g.host} does not exist`,
          'create it or fix the path',
        );
      binds.push({
        src: r.real,
        dst: g.guest,
        readonly: g.readonly,
        why: '--sandbox-bind',
        pin: r,
      });
    }
    plan.binds = onePerGuestPath(binds);
    plan.masks = engineMasks(plan.binds, plan.engines, env);
    // Descriptors only used for a check are closed; those bound or written through stay.
    const kept = new Set([
      ...plan.binds.map((b) => b.pin),
      ...plan.outerDirs.values(),
      ...plan.fileOutputs.map((f) => f.dir),
    ]);
    for (const r of opened.splice(0)) if (!kept.has(r)) closeSync(r.fd);
    return plan;
  } catch (e) {
    for (const r of opened) closeSync(r.fd);
    throw e;
  }
}

/**
 * Engine sockets and the managed builder's directory, wherever a bound directory holds them:
 * hidden at their place inside (an empty file over a socket, an empty tmpfs over a directory).
 */
function engineMasks(
  binds: readonly PlannedBind[],
  engines: readonly EngineSocket[],
  env: Readonly<Record<string, string | undefined>>,
): Mask[] {
  const masks: Mask[] = [];
  let managed: string | undefined;
  try {
    managed = realpathSync(managedBuilderDir(env));
  } catch {
    managed = undefined;
  }
  for (const b of binds) {
    if (b.pin.kind !== 'dir') continue;
    for (const e of engines)
      if (under(e.real, b.src) && e.real !== b.src)
        masks.push({
          dst: b.dst + e.real.slice(b.src.length),
          kind: 'file',
          why: `engine socket ${e.path}`,
        });
    if (managed && under(managed, b.src))
      masks.push({
        dst: b.dst + managed.slice(b.src.length),
        kind: 'dir',
        why: 'ktl managed builder',
      });
  }
  return masks;
}

/**
 * The masks as a runtime can make them. nsjail cannot mount over a socket (it opens the mount
 * point with O_CREAT: ENXIO), so under nsjail a masked socket's whole directory is hidden (an
 * empty directory over it), and a bound directory that holds the socket itself is bound empty
 * (`emptied`: its guest path, whose pin no longer applies).
 */
export function masksFor(
  masks: readonly Mask[],
  binds: readonly PlannedBind[],
  runtime: string,
): { masks: Mask[]; emptied: Set<string> } {
  if (runtime !== 'nsjail') return { masks: [...masks], emptied: new Set() };
  const out = new Map<string, Mask>();
  const emptied = new Set<string>();
  for (const m of masks) {
    const dst = m.kind === 'file' ? dirname(m.dst) : m.dst;
    if (binds.some((b) => b.dst === dst)) emptied.add(dst);
    else if (!out.has(dst)) out.set(dst, { dst, kind: 'dir', why: m.why });
  }
  return { masks: [...out.values()], emptied };
}

/**
 * Makes what outputs and the outer ktl's directories still miss (each name made under the one
 * before it, and pinned) and returns the directories made, for cleanUp: `top` is the first one
 * made, `leaf` the last.
 */
export function makeBindDirs(plan: BindPlan): { leaf: string; top: string }[] {
  const made: { leaf: string; top: string }[] = [];
  const fix = (p: Pinned, why: string): Pinned => {
    if (p.missing.length === 0) return p;
    const top = [p.real === '/' ? '' : p.real, p.missing[0]].join('/');
    const r = makeMissing(p, why);
    made.push({ leaf: r.real, top });
    return r;
  };
  for (const b of plan.binds) {
    b.pin = fix(b.pin, b.why);
    b.src = b.pin.real;
  }
  for (const [dir, p] of plan.outerDirs) plan.outerDirs.set(dir, fix(p, dir));
  for (const f of plan.fileOutputs) f.dir = fix(f.dir, f.dest);
  return made;
}

/** Closes every descriptor the plan holds. */
export function closeBindPlan(plan: BindPlan): void {
  const fds = new Set([
    ...plan.binds.map((b) => b.pin.fd),
    ...[...plan.outerDirs.values()].map((p) => p.fd),
    ...plan.fileOutputs.map((f) => f.dir.fd),
  ]);
  for (const fd of fds) {
    try {
      closeSync(fd);
    } catch {
      // Already closed.
    }
  }
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
