/**
 * buildctl's TLS flags (commands/builder-flags.ts) as the builder search takes them. Only the
 * outer ktl reads the files: a sandboxed build's jail never holds the client key (the gateway dials
 * the builder). No oclif here: the early start (src/early.ts) reads them too.
 */
import { resolve } from 'node:path';
import { BuildkitError, checkTlsFlags, type TlsFlags } from '@ktl/buildkit-client';
import { BuildUsageError } from './usage-error';

export interface TlsFlagValues {
  readonly tlscacert?: string | undefined;
  readonly tlscert?: string | undefined;
  readonly tlskey?: string | undefined;
  readonly tlsdir?: string | undefined;
  readonly tlsservername?: string | undefined;
}

/** The flags as paths from `cwd`, checked for contradictions (BuildUsageError); undefined: none. */
export function builderTlsFromFlags(f: TlsFlagValues, cwd: string): TlsFlags | undefined {
  const path = (p: string | undefined) => (p ? resolve(cwd, p) : undefined);
  const t: TlsFlags = {
    ...(f.tlscacert ? { caCert: path(f.tlscacert) } : {}),
    ...(f.tlscert ? { cert: path(f.tlscert) } : {}),
    ...(f.tlskey ? { key: path(f.tlskey) } : {}),
    ...(f.tlsdir ? { dir: path(f.tlsdir) } : {}),
    ...(f.tlsservername ? { serverName: f.tlsservername } : {}),
  };
  if (Object.keys(t).length === 0) return undefined;
  try {
    checkTlsFlags(t);
  } catch (e) {
    if (!BuildkitError.is(e)) throw e;
    // The message is `--FLAG what is wrong`.
    const [flag = '--tls', ...reason] = e.message.split(' ');
    throw new BuildUsageError(flag, undefined, reason.join(' '), e.hint);
  }
  return t;
}
