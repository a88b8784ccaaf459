/**
 * Finding a builder when none is named: BUILDKIT_HOST, then DOCKER_HOST, then the caller's
 * preferred builders, then the default buildkitd socket, then the default Docker socket. The first that answers wins; when none
 * does, one E_NO_BUILDER error lists every attempt and its reason.
 */
import { BuildkitError, type DiscoveryAttempt } from '../errors';
import {
  type BuildkitAddress,
  DEFAULT_BUILDKITD_SOCKET,
  DEFAULT_DOCKER_SOCKET,
  formatAddress,
  parseAddress,
} from './address';
import { type BuildkitConnection, type ConnectOptions, connectTo } from './connect';
import { chosenContext, readDockerContext } from './docker-context';
import { dockerEnvTls, flagsTls, hasTlsFlags, type TlsFlags, type TlsOptions } from './tls';

export interface Candidate {
  readonly source: string;
  /** The address as written where it came from (kept for the error text). */
  readonly raw: string;
  /** Undefined when `raw` does not parse; `parseError` says why. */
  readonly address: BuildkitAddress | undefined;
  readonly parseError?: string;
  readonly tls?: TlsOptions | undefined;
  /** Its TLS settings are unusable (a file missing, not PEM, a key of another certificate). */
  readonly tlsError?: BuildkitError | undefined;
  /**
   * The builder named is one ktl cannot use (a docker context over ssh://): the search stops
   * with this, rather than build somewhere the user did not point it.
   */
  readonly refused?: BuildkitError | undefined;
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
  /**
   * buildctl's TLS flags, for the builder on `tcp://` named explicitly (the address given,
   * BUILDKIT_HOST, DOCKER_HOST); they take the place of Docker's TLS variables there. Refused
   * (E_BAD_OPTION) when no such builder is named.
   */
  readonly tlsFlags?: TlsFlags | undefined;
  /**
   * A docker context by name (`--context`): the builder is that context's engine, and nothing
   * else is tried. Without it, DOCKER_CONTEXT or the docker config's currentContext is a
   * candidate after DOCKER_HOST, when DOCKER_HOST is unset (docker/cli's order).
   */
  readonly context?: string | undefined;
}

const DEFAULTS = [
  { source: 'default buildkitd socket', address: `unix://${DEFAULT_BUILDKITD_SOCKET}` },
  { source: 'default Docker socket', address: `docker://unix://${DEFAULT_DOCKER_SOCKET}` },
];

type Env = Readonly<Record<string, string | undefined>>;

/**
 * The TLS for an explicitly named builder: the caller's own (opts.tls), else buildctl's flags,
 * else, for a Docker engine, Docker's variables. Only `tcp://` has TLS. `--tlsservername`
 * renames the server of whichever applies.
 */
function explicitTls(
  addr: BuildkitAddress,
  opts: DiscoverOptions,
  env: Env,
  /** A Docker engine's own TLS when no flag gives one: Docker's variables, or its context's. */
  engineTls: () => TlsOptions | undefined = () => dockerEnvTls(env),
): TlsOptions | undefined {
  const engine = addr.kind === 'docker' ? addr.engine : addr;
  if (engine.kind !== 'tcp') return undefined;
  if (opts.tls) return opts.tls;
  const flags = opts.tlsFlags;
  const base =
    (hasTlsFlags(flags) ? flagsTls(flags) : undefined) ??
    (addr.kind === 'docker' ? engineTls() : undefined);
  const serverName = flags?.serverName || undefined;
  if (base === undefined) {
    if (serverName)
      throw new BuildkitError(
        `--tlsservername ${serverName} names the server of a TLS connection, and nothing sets up TLS for ${formatAddress(addr)}`,
        {
          code: 'E_BAD_OPTION',
          hint:
            addr.kind === 'docker'
              ? 'give --tlscacert (or --tlsdir), or set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH'
              : 'give --tlscacert (or --tlsdir) as well',
        },
      );
    return undefined;
  }
  return serverName ? { ...base, serverName } : base;
}

function candidate(source: string, raw: string): Candidate {
  try {
    return { source, raw, address: parseAddress(raw) };
  } catch (e) {
    return { source, raw, address: undefined, parseError: (e as Error).message };
  }
}

/** `c` with its TLS resolved; TLS files that cannot be used are kept as its tlsError. */
function withTls(
  c: Candidate,
  opts: DiscoverOptions,
  env: Env,
  engineTls?: () => TlsOptions | undefined,
): Candidate {
  if (!c.address) return c;
  try {
    return { ...c, tls: explicitTls(c.address, opts, env, engineTls) };
  } catch (e) {
    if (BuildkitError.is(e) && e.code === 'E_TLS') return { ...c, tlsError: e };
    throw e;
  }
}

/** A Docker engine's address as an engine address: `tcp://H:P` is `docker://tcp://H:P`. */
function asEngine(c: Candidate): Candidate {
  return c.address && c.address.kind !== 'docker'
    ? { ...c, address: { kind: 'docker', engine: c.address } }
    : c;
}

/**
 * The engine of the docker context `name` (E_BAD_OPTION when the store has no such context),
 * with the context's TLS material unless flags give TLS. An endpoint ktl cannot reach (ssh://)
 * is kept with the reason, as an address that does not parse.
 */
function contextCandidate(
  name: string,
  chosenBy: string,
  opts: DiscoverOptions,
  env: Env,
): Candidate {
  const ctx = readDockerContext(name, env, chosenBy);
  const c = candidate(`docker context ${name} (${chosenBy})`, ctx.host);
  if (!c.address) {
    const why = /^ssh:/i.test(ctx.host)
      ? `its endpoint ${ctx.host} is reached over ssh, which ktl does not do`
      : (c.parseError ?? 'invalid endpoint');
    return {
      ...c,
      parseError: why,
      refused: new BuildkitError(`${c.source}: ${why}`, {
        code: 'E_UNSUPPORTED',
        hint: 'use a context on unix:// or tcp:// (with TLS), or name the builder with --builder',
      }),
    };
  }
  return withTls(asEngine(c), opts, env, () => ctx.tls);
}

const onTcp = (c: Candidate) =>
  c.address !== undefined &&
  (c.address.kind === 'docker' ? c.address.engine.kind : c.address.kind) === 'tcp';

function refuseUnusedTlsFlags(opts: DiscoverOptions, named: readonly Candidate[]): void {
  if (!hasTlsFlags(opts.tlsFlags) || named.some(onTcp)) return;
  throw new BuildkitError(
    `the TLS flags (--tlscacert, --tlscert, --tlskey, --tlsdir, --tlsservername) are for a builder on tcp://, and ${named.length === 0 ? 'none is named' : `${named.map((c) => `${c.source} is ${c.raw}`).join(', ')}`}`,
    {
      code: 'E_BAD_OPTION',
      hint: 'name the builder with --builder tcp://HOST:PORT (buildkitd) or docker://tcp://HOST:PORT (a Docker engine), or BUILDKIT_HOST',
    },
  );
}

/**
 * The builder at `address` (named by `source`), its TLS resolved as discovery resolves it:
 * for `connect(address)` and `--builder`.
 */
export function namedCandidate(
  source: string,
  address: string,
  opts: DiscoverOptions = {},
): Candidate {
  if (opts.context !== undefined)
    throw new BuildkitError(
      `${source} ${address} and --context ${opts.context} name two builders`,
      {
        code: 'E_BAD_OPTION',
        hint: 'give one of them',
      },
    );
  const c = withTls(candidate(source, address), opts, opts.env ?? process.env);
  refuseUnusedTlsFlags(opts, [c]);
  return c;
}

/** The addresses discovery will try, in order, without touching the network. */
export function candidates(opts: DiscoverOptions = {}): Candidate[] {
  const env = opts.env ?? process.env;
  if (opts.context !== undefined) {
    // `--context NAME` names the builder, as --builder does; `default` is DOCKER_HOST, else
    // the default Docker socket.
    const c =
      opts.context === 'default'
        ? withTls(
            asEngine(
              candidate(
                'docker context default (--context)',
                env.DOCKER_HOST?.trim() || `unix://${DEFAULT_DOCKER_SOCKET}`,
              ),
            ),
            opts,
            env,
          )
        : contextCandidate(opts.context, '--context', opts, env);
    refuseUnusedTlsFlags(opts, [c]);
    return [c];
  }
  const out: Candidate[] = [];
  const bk = env.BUILDKIT_HOST?.trim();
  if (bk) out.push(withTls(candidate('BUILDKIT_HOST', bk), opts, env));
  const dh = env.DOCKER_HOST?.trim();
  if (dh) {
    // DOCKER_HOST names an engine; reach its BuildKit through the engine API.
    out.push(withTls(asEngine(candidate('DOCKER_HOST', dh)), opts, env));
  }
  // DOCKER_CONTEXT, else the docker config's currentContext (none when DOCKER_HOST is set).
  const ctx = chosenContext(env);
  if (ctx) out.push(contextCandidate(ctx.name, ctx.source, opts, env));
  refuseUnusedTlsFlags(opts, out);
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

function tlsStop(c: Candidate, e: BuildkitError): BuildkitError {
  return new BuildkitError(`${c.source}: ${e.message}`, {
    code: 'E_TLS',
    hint: e.hint,
    cause: e,
  });
}

/** Connects to `address` (its TLS as discovery resolves it for a named builder). */
export async function connectNamed(
  address: string | BuildkitAddress,
  opts: DiscoverOptions & Pick<ConnectOptions, 'verify'> = {},
): Promise<BuildkitConnection> {
  if (typeof address !== 'string') return connectTo(address, opts);
  const c = namedCandidate('the builder address', address, opts);
  if (c.tlsError) throw c.tlsError;
  return connectTo(c.address ?? address, { ...opts, tls: c.tls });
}

/** Connects to the first candidate that answers. */
export async function discover(opts: DiscoverOptions = {}): Promise<BuildkitConnection> {
  const attempts: DiscoveryAttempt[] = [];
  for (const c of candidates(opts)) {
    if (c.refused) throw c.refused;
    if (!c.address) {
      attempts.push({ source: c.source, address: c.raw, reason: c.parseError ?? 'invalid' });
      continue;
    }
    // A TLS failure ends the search: the builder meant is there and is not safe to use, and
    // building on the next one instead would put the build where the user did not send it.
    if (c.tlsError) throw tlsStop(c, c.tlsError);
    try {
      return await connectTo(c.address, { ...opts, verify: true, tls: c.tls });
    } catch (e) {
      if (BuildkitError.is(e) && e.code === 'E_TLS') throw tlsStop(c, e);
      attempts.push({ source: c.source, address: formatAddress(c.address), reason: reasonOf(e) });
    }
  }
  throw noBuilderError(attempts);
}
