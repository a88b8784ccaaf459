/**
 * Finding a builder when none is named: BUILDKIT_HOST, then DOCKER_HOST, then the caller's
 * preferred builders, then the default buildkitd socket, then the default Docker socket. The first that answers wins; when none
 * does, one E_NO_BUILDER error lists every attempt and its reason.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BuildkitError, type DiscoveryAttempt } from '../errors';
import {
  type BuildkitAddress,
  DEFAULT_BUILDKITD_SOCKET,
  DEFAULT_DOCKER_SOCKET,
  formatAddress,
  parseAddress,
} from './address';
import { type BuildkitConnection, type ConnectOptions, connectTo } from './connect';
import type { TlsOptions } from './upgrade';

export interface Candidate {
  readonly source: string;
  /** The address as written where it came from (kept for the error text). */
  readonly raw: string;
  /** Undefined when `raw` does not parse; `parseError` says why. */
  readonly address: BuildkitAddress | undefined;
  readonly parseError?: string;
  readonly tls?: TlsOptions | undefined;
}

export interface DiscoverOptions extends Omit<ConnectOptions, 'verify'> {
  /** Environment to read (default process.env). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /**
   * Tried after BUILDKIT_HOST and DOCKER_HOST and before the default sockets: builders the
   * caller manages itself (ktl's `ktl builder start` engine).
   */
  readonly preferred?: ReadonlyArray<{ source: string; address: string }>;
  /** Replaces the default sockets (tests use this to avoid touching real ones). */
  readonly defaults?: ReadonlyArray<{ source: string; address: string }>;
}

const DEFAULTS = [
  { source: 'default buildkitd socket', address: `unix://${DEFAULT_BUILDKITD_SOCKET}` },
  { source: 'default Docker socket', address: `docker://unix://${DEFAULT_DOCKER_SOCKET}` },
];

/** Docker's own TLS convention: DOCKER_TLS_VERIFY=1 and ca/cert/key.pem in DOCKER_CERT_PATH. */
function dockerTls(env: DiscoverOptions['env'] & object): TlsOptions | undefined {
  if (!env.DOCKER_TLS_VERIFY || !env.DOCKER_CERT_PATH) return undefined;
  const dir = env.DOCKER_CERT_PATH;
  const read = (f: string) => {
    try {
      return readFileSync(join(dir, f));
    } catch {
      return undefined;
    }
  };
  return { ca: read('ca.pem'), cert: read('cert.pem'), key: read('key.pem') };
}

function candidate(source: string, raw: string, tls?: TlsOptions): Candidate {
  try {
    return { source, raw, address: parseAddress(raw), tls };
  } catch (e) {
    return { source, raw, address: undefined, parseError: (e as Error).message, tls };
  }
}

/** The addresses discovery will try, in order, without touching the network. */
export function candidates(opts: DiscoverOptions = {}): Candidate[] {
  const env = opts.env ?? process.env;
  const out: Candidate[] = [];
  const bk = env.BUILDKIT_HOST?.trim();
  if (bk) out.push(candidate('BUILDKIT_HOST', bk));
  const dh = env.DOCKER_HOST?.trim();
  if (dh) {
    // DOCKER_HOST names an engine; reach its BuildKit through the engine API.
    const c = candidate('DOCKER_HOST', dh, dockerTls(env));
    out.push(
      c.address && c.address.kind !== 'docker'
        ? { ...c, address: { kind: 'docker', engine: c.address } }
        : c,
    );
  }
  for (const d of opts.preferred ?? []) out.push(candidate(d.source, d.address));
  for (const d of opts.defaults ?? DEFAULTS) out.push(candidate(d.source, d.address));
  // The same address from two sources is tried once.
  const seen = new Set<string>();
  return out.filter((c) => {
    const key = c.address ? formatAddress(c.address) : c.raw;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function reasonOf(e: unknown): string {
  if (BuildkitError.is(e)) {
    // connect() prefixes "cannot reach builder at X: "; the list already names X.
    return e.message.replace(/^cannot reach builder at \S+: /, '');
  }
  return e instanceof Error ? e.message : String(e);
}

export function noBuilderError(attempts: readonly DiscoveryAttempt[]): BuildkitError {
  const lines = attempts.map((a) => `  - ${a.source}: ${a.address}: ${a.reason}`);
  const hint =
    'start buildkitd or a Docker engine, or point BUILDKIT_HOST at a builder ' +
    '(unix:///run/buildkit/buildkitd.sock, tcp://host:1234, docker://unix:///var/run/docker.sock) ' +
    'or DOCKER_HOST at a Docker engine';
  return new BuildkitError(`no BuildKit builder answered; tried:\n${lines.join('\n')}\n${hint}`, {
    code: 'E_NO_BUILDER',
    hint,
    attempts,
  });
}

/** Connects to the first candidate that answers. */
export async function discover(opts: DiscoverOptions = {}): Promise<BuildkitConnection> {
  const attempts: DiscoveryAttempt[] = [];
  for (const c of candidates(opts)) {
    if (!c.address) {
      attempts.push({ source: c.source, address: c.raw, reason: c.parseError ?? 'invalid' });
      continue;
    }
    try {
      return await connectTo(c.address, {
        ...opts,
        verify: true,
        tls: opts.tls ?? c.tls,
      });
    } catch (e) {
      attempts.push({ source: c.source, address: formatAddress(c.address), reason: reasonOf(e) });
    }
  }
  throw noBuilderError(attempts);
}
