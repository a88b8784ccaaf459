/**
 * The hand-over from the outer ktl to the jailed one: the build options the outer ktl already
 * parsed and validated and the session to serve, in a read-only file in the jail's /run/ktl.
 * The jail starts before the outer ktl has found the builder, so the file appears (renamed into
 * place, whole) while the jailed ktl is starting; it waits for it. The jailed half
 * (src/inner.ts) serves the session from it directly, without the CLI framework or a second
 * parse.
 */
import type { BuildOptions } from '../build/options';

export const INNER_SPEC_FILE = 'build.json';

/** A host object by identity (decimal strings: JSON has no bigint). */
export interface Identity {
  readonly dev: string;
  readonly ino: string;
}

export interface InnerSpec {
  readonly version: 4;
  readonly options: BuildOptions;
  /** The session id the outer ktl's Solve names; the jailed ktl serves it. */
  readonly sessionId: string;
  /** The gateway's address inside the jail (it passes the session and nothing else). */
  readonly gateway: string;
  /** --sandbox-logs: print what the jailed ktl can see before building. */
  readonly logs: boolean;
  /** The --sandbox-bind guest paths (must be present inside). */
  readonly bound: readonly string[];
  /** The writable binds; the jailed ktl refuses to write outputs anywhere else. */
  readonly writable: readonly string[];
  /** The real builder's socket(s), which the jailed ktl checks are absent (--sandbox-logs). */
  readonly mustNotSee: readonly string[];
  /**
   * Each bind's guest path and the identity of what the outer ktl checked and pinned: the
   * jailed ktl serves nothing unless each is what is mounted there (a path swapped for a link
   * between the check and the runtime's mount would show here).
   */
  readonly pins: readonly (Identity & { readonly dst: string })[];
  /** The engine sockets on the host, by identity: none may be reachable inside. */
  readonly engines: readonly (Identity & { readonly path: string })[];
}

export const INNER_SPEC_VERSION = 4;

/**
 * Every host path the jailed ktl writes: the -o destinations (FileSend) and local cache
 * exports (the content service). --iidfile and --metadata-file are the outer ktl's (it has
 * the Solve's response).
 */
export function outputPaths(o: BuildOptions): string[] {
  return [
    ...o.outputs.flatMap((x) => ('dest' in x ? [x.dest] : [])),
    ...o.cacheTo.flatMap((c) => (c.type === 'local' && c.attrs?.dest ? [c.attrs.dest] : [])),
  ];
}

/**
 * The output paths that no writable bind covers. Writing there would land in the jail's
 * throw-away tmpfs and vanish: a build that "succeeds" with nothing to show.
 */
export function unboundOutputs(paths: readonly string[], writable: readonly string[]): string[] {
  return paths.filter((p) => !writable.some((w) => p === w || p.startsWith(`${w}/`)));
}

/**
 * The binds whose guest path does not hold what the outer ktl pinned (by device and inode),
 * as messages; empty when all are in place.
 */
export function pinMismatches(
  pins: InnerSpec['pins'],
  stat: (p: string) => { dev: bigint; ino: bigint } | undefined,
): string[] {
  const out: string[] = [];
  for (const p of pins) {
    const st = stat(p.dst);
    if (!st) out.push(`${p.dst}: not there`);
    else if (String(st.dev) !== p.dev || String(st.ino) !== p.ino)
      out.push(
        `${p.dst}: holds device ${st.dev} inode ${st.ino}, not the checked ${p.dev}/${p.ino}`,
      );
  }
  return out;
}
