/**
 * What the jailed ktl can see, printed with --sandbox-logs: the daemon sockets that must not be
 * there (the host's and the real builder's, named by the outer ktl) and the network interfaces.
 * It turns "the sandbox hides X" from a claim into a line anyone can read.
 */
import { existsSync } from 'node:fs';
import { networkInterfaces } from 'node:os';

export const HIDDEN_ENV = 'KTL_SANDBOX_MUST_NOT_SEE';
const WELL_KNOWN = [
  '/var/run/docker.sock',
  '/run/docker.sock',
  '/run/containerd/containerd.sock',
  '/run/buildkit/buildkitd.sock',
];

/** `bound` are the --sandbox-bind guest paths, which must be there. */
export function selfCheckLines(
  env: NodeJS.ProcessEnv = process.env,
  bound: readonly string[] = [],
): string[] {
  const paths = [
    ...new Set([...(env[HIDDEN_ENV] ?? '').split(':').filter(Boolean), ...WELL_KNOWN]),
  ];
  const lines = paths.map((p) => `[sandbox] inside: ${p}: ${existsSync(p) ? 'PRESENT' : 'absent'}`);
  for (const g of bound)
    lines.push(`[sandbox] inside: bound ${g}: ${existsSync(g) ? 'present' : 'MISSING'}`);
  lines.push(
    `[sandbox] inside: network interfaces: ${Object.keys(networkInterfaces()).sort().join(', ') || 'none'}`,
  );
  return lines;
}
