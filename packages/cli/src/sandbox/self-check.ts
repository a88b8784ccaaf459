/**
 * What the jailed ktl can see, printed with --sandbox-logs: the daemon sockets that must not be
 * there (the host's and the real builder's, named by the outer ktl) and the network interfaces.
 * It turns "the sandbox hides X" from a claim into a line anyone can read.
 */
import { existsSync, statSync } from 'node:fs';
import { networkInterfaces } from 'node:os';

const WELL_KNOWN = [
  '/var/run/docker.sock',
  '/run/docker.sock',
  '/run/containerd/containerd.sock',
  '/run/buildkit/buildkitd.sock',
];

/**
 * `hidden` are the real builder's sockets (named by the outer ktl), which must not be there;
 * `bound` are the --sandbox-bind guest paths, which must be. `engines` are the host's engine
 * sockets by identity: a path inside that is one of them (under whatever name: the well-known
 * paths, an ssh agent's, the engine's own) is PRESENT; a masked or unrelated file is not.
 */
export function selfCheckLines(
  hidden: readonly string[] = [],
  bound: readonly string[] = [],
  engines: readonly { path: string; dev: string; ino: string }[] = [],
  alsoCheck: readonly string[] = [],
): string[] {
  const ids = new Set(engines.map((e) => `${e.dev}:${e.ino}`));
  const state = (p: string): string => {
    let st: { dev: bigint; ino: bigint; isSocket(): boolean };
    try {
      st = statSync(p, { bigint: true });
    } catch {
      return 'absent';
    }
    if (ids.has(`${st.dev}:${st.ino}`)) return 'PRESENT (an engine socket)';
    if (!st.isSocket()) return 'absent (masked)';
    // A socket whose identity is not known: only a path the outer ktl named as the engine's.
    return hidden.includes(p) ? 'PRESENT' : 'a socket, not an engine socket';
  };
  const paths = [...new Set([...hidden, ...WELL_KNOWN, ...engines.map((e) => e.path)])];
  const lines = paths.map((p) => `[sandbox] inside: ${p}: ${state(p)}`);
  for (const p of alsoCheck)
    if (!paths.includes(p)) lines.push(`[sandbox] inside: ${p}: ${state(p)}`);
  for (const g of bound)
    lines.push(`[sandbox] inside: bound ${g}: ${existsSync(g) ? 'present' : 'MISSING'}`);
  lines.push(
    `[sandbox] inside: network interfaces: ${Object.keys(networkInterfaces()).sort().join(', ') || 'none'}`,
  );
  return lines;
}
