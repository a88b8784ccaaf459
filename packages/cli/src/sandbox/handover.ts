/**
 * What the outer ktl hands the jailed one besides binds: the environment variables the command
 * line names (forward-env.ts) and the registry credentials the build may need.
 *
 * Credentials are resolved out here, where the credential helpers live, and written into a
 * private config.json with inline entries only, so no helper ever runs inside the jail. The
 * hosts are the ones the user's docker config names plus the registries of the -t names and
 * of `--build-context NAME=docker-image://REF`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CredentialStore, loadDockerConfig, parseImageName } from '@ktl/buildkit-client';
import type { BuildOptions } from '../build/options';

/** Registry hosts the build may talk to that credentials could exist for. */
export function registryHosts(o: BuildOptions, store: CredentialStore): string[] {
  const hosts = new Set(store.hosts ?? []);
  for (const t of o.tags) hosts.add(parseImageName(t).domain);
  for (const c of [...o.cacheFrom, ...o.cacheTo]) {
    if (c.type === 'registry' && c.attrs?.ref) hosts.add(parseImageName(c.attrs.ref).domain);
  }
  for (const src of Object.values(o.buildContexts)) {
    if (src.startsWith('docker-image://'))
      hosts.add(parseImageName(src.slice('docker-image://'.length)).domain);
  }
  return [...hosts].sort();
}

const HUB_KEY = 'https://index.docker.io/v1/';

/**
 * Writes `<dir>/config.json` holding the resolved credentials (mode 0600) and returns the hosts
 * it covers. A host whose helper fails is left out with a warning: the registry then sees an
 * anonymous request and says so itself.
 */
export async function writeJailDockerConfig(
  dir: string,
  o: BuildOptions,
  env: Readonly<Record<string, string | undefined>>,
  warn: (line: string) => void,
): Promise<string[]> {
  let store: CredentialStore;
  try {
    store = loadDockerConfig({ env });
  } catch (e) {
    warn(`WARNING: ${(e as Error).message}; registry requests go unauthenticated`);
    store = { get: async () => undefined, hosts: [] };
  }
  const auths: Record<string, { auth?: string; identitytoken?: string }> = {};
  for (const host of registryHosts(o, store)) {
    try {
      const c = await store.get(host);
      if (!c) continue;
      auths[host === 'docker.io' ? HUB_KEY : host] =
        c.username === ''
          ? { identitytoken: c.secret }
          : { auth: Buffer.from(`${c.username}:${c.secret}`).toString('base64') };
    } catch (e) {
      warn(`WARNING: registry credentials for ${host}: ${(e as Error).message}`);
    }
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, 'config.json'), `${JSON.stringify({ auths })}\n`, { mode: 0o600 });
  return Object.keys(auths);
}
