/**
 * What the outer ktl gives the jailed one besides binds: the environment variables the command
 * line names (forward-env.ts), and answers about registry credentials.
 *
 * No credential crosses into the jail's filesystem. The daemon asks the build session (served
 * by the jailed ktl) for a registry's credentials; the jailed ktl relays the call through the
 * gateway's socket (@ktl/buildkit-client's authRelay), and the answerer made here replies from
 * the user's own docker config, its credential helpers run out here. Only the hosts the daemon
 * asks about are looked up, each when it is asked.
 */
import {
  type AuthAnswerer,
  type CredentialStore,
  credentialAnswerer,
  loadDockerConfig,
} from '@ktl/buildkit-client';

export interface OuterAuthOptions {
  /** One line per problem with the docker config itself (it is then treated as empty). */
  warn: (line: string) => void;
  /**
   * Once per host (and outcome) the daemon asks about: whether credentials were given, and the
   * lookup's error when it failed (the daemon gets that error for its call).
   */
  onAsked?: (host: string, given: boolean, error?: Error) => void;
}

/**
 * The outer ktl's answers to the jail's relayed Auth calls, from the docker config `env` names
 * (DOCKER_CONFIG, else ~/.docker), read on the first call.
 */
export function outerAuthAnswerer(
  env: Readonly<Record<string, string | undefined>>,
  opts: OuterAuthOptions,
): AuthAnswerer {
  let store: CredentialStore | undefined;
  const load = (): CredentialStore => {
    if (store) return store;
    try {
      store = loadDockerConfig({ env });
    } catch (e) {
      opts.warn(`WARNING: ${(e as Error).message}; registry requests go unauthenticated`);
      store = { get: async () => undefined, hosts: [] };
    }
    return store;
  };
  const told = new Set<string>();
  return credentialAnswerer(
    { get: (host) => load().get(host) },
    {
      onCredentials: (host, given, error) => {
        const key = `${host}\0${given}\0${error ? 'failed' : ''}`;
        if (told.has(key)) return;
        told.add(key);
        opts.onAsked?.(host, given, error);
      },
    },
  );
}

/** The `--sandbox-logs` line for a host the daemon asked about. */
export function askedLine(host: string, given: boolean, error?: Error): string {
  return `[sandbox] registry credentials asked for ${host}: ${given ? 'given' : 'none'}${error ? ` (${error.message})` : ''}`;
}
