/**
 * What the jailed ktl can see, printed with --sandbox-logs: the daemon sockets that must not be
 * there (the host's and the real builder's, named by the outer ktl) and the network interfaces.
 * It turns "the sandbox hides X" from a claim into a line anyone can read.
 */
import { existsSync } from 'node:fs';
import { networkInterfaces } from 'node:os';

const WELL_KNOWN = [
  '/var/run/docker.sock',
  '/run/docker.sock',
  '/run/containerd/containerd.sock',
  '/run/buildkit/buildkitd.sock',
];

/**
 * `hidden` are the real builder's sockets (named by the outer ktl), which must not be there;
 * `bound` are the --sandbox-bind guest paths, which must be.
 */
export function selfCheckLines(
  hidden: readonly string[] = [],
  bound: readonly string[] = [],
): string[] {
  const paths = [...new Set([...hidden, ...WELL_KNOWN])];
  const lines = paths.map((p) => `[sandbox] inside: ${p}: ${existsSync(p) ? 'PRESENT' : 'absent'}`);
  for (const g of bound)
    lines.push(`[sandbox] inside: bound ${g}: ${existsSync(g) ? 'present' : 'MISSING'}`);
  lines.push(
    `[sandbox] inside: network interfaces: ${Object.keys(networkInterfaces()).sort().join(', ') || 'none'}`,
  );
  return lines;
}
