/**
 * Registry credentials the way the docker CLI finds them in `$DOCKER_CONFIG/config.json`
 * (default `~/.docker/config.json`): `credHelpers[host]` first, then `credsStore`, then the
 * inline `auths` entries. Helpers are run as `docker-credential-<name> get` with the server
 * address on stdin. A lookup never throws for a missing entry: no credentials means an
 * anonymous request, which is what the registry then judges.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { nodeChildProcess } from '../lazy-node';

export interface RegistryCredentials {
  /** Empty with an identity token (then `secret` is the token). */
  readonly username: string;
  readonly secret: string;
}

export interface CredentialStore {
  /** Credentials for a registry host (`127.0.0.1:5000`, `registry-1.docker.io`), if any. */
  get(host: string): Promise<RegistryCredentials | undefined>;
  /** Hosts the configuration names (auths and credHelpers keys), as bare hosts. */
  readonly hosts?: readonly string[];
}

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
}

interface DockerConfigFile {
  auths?: Record<string, AuthEntry>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

export interface DockerConfigOptions {
  /** Directory holding config.json; default `$DOCKER_CONFIG`, else `~/.docker`. */
  readonly configDir?: string | undefined;
  readonly env?: Readonly<Record<string, string | undefined>> | undefined;
  /** Per helper call, ms (default 30 s: helpers may prompt a keychain). */
  readonly helperTimeoutMs?: number | undefined;
}

/** The key Docker Hub credentials are stored under, whatever host name the daemon uses. */
export const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';
const HUB_HOSTS = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/** `https://host/v1/` → `host`; the daemon asks by bare host, config keys may be URLs. */
export function configKeyHost(key: string): string {
  const noScheme = key.replace(/^[a-z]+:\/\//i, '');
  const host = noScheme.split('/')[0] ?? '';
  return HUB_HOSTS.has(host) ? 'docker.io' : host;
}

function serverAddress(host: string): string {
  return HUB_HOSTS.has(host) ? DOCKER_HUB_KEY : host;
}

const HELPER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function fromEntry(e: AuthEntry): RegistryCredentials | undefined {
  if (e.identitytoken) return { username: '', secret: e.identitytoken };
  if (e.username !== undefined || e.password !== undefined) {
    return { username: e.username ?? '', secret: e.password ?? '' };
  }
  if (e.auth) {
    const text = Buffer.from(e.auth, 'base64').toString('utf8');
    const i = text.indexOf(':');
    if (i < 0) return undefined;
    return { username: text.slice(0, i), secret: text.slice(i + 1) };
  }
  return undefined;
}

function runHelper(
  helper: string,
  server: string,
  timeoutMs: number,
  env: Readonly<Record<string, string | undefined>>,
): Promise<RegistryCredentials | undefined> {
  if (!HELPER_NAME.test(helper)) {
    return Promise.reject(new Error(`invalid credential helper name ${JSON.stringify(helper)}`));
  }
  return new Promise((resolve, reject) => {
    const child = nodeChildProcess().execFile(
      `docker-credential-${helper}`,
      ['get'],
      { timeout: timeoutMs, maxBuffer: 1024 * 1024, env: { ...env } },
      (err, stdout, stderr) => {
        const out = String(stdout).trim();
        // The helper protocol's way of saying "no entry": exit 1 and this text on stdout.
        if (/credentials not found/i.test(out)) return resolve(undefined);
        if (err) {
          const why =
            (err as NodeJS.ErrnoException).code === 'ENOENT'
              ? 'not found on PATH'
              : out || String(stderr).trim() || err.message;
          return reject(new Error(`docker-credential-${helper} get ${server}: ${why}`));
        }
        try {
          const j = JSON.parse(out) as { Username?: string; Secret?: string };
          // `<token>` as the user name marks an identity token (docker-credential-helpers).
          const username = j.Username === '<token>' ? '' : (j.Username ?? '');
          resolve({ username, secret: j.Secret ?? '' });
        } catch {
          reject(new Error(`docker-credential-${helper} get ${server}: output is not JSON`));
        }
      },
    );
    // A helper that exits without reading its stdin closes the pipe: its exit status (seen
    // above) is the error to report, not the EPIPE of this write.
    child.stdin?.on('error', () => {});
    child.stdin?.end(server);
  });
}

export function loadDockerConfig(opts: DockerConfigOptions = {}): CredentialStore {
  const env = opts.env ?? process.env;
  const dir = opts.configDir ?? (env.DOCKER_CONFIG || join(env.HOME || homedir(), '.docker'));
  const timeoutMs = opts.helperTimeoutMs ?? 30_000;
  let cfg: DockerConfigFile = {};
  try {
    cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as DockerConfigFile;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') {
      throw new Error(`cannot read ${join(dir, 'config.json')}: ${(e as Error).message}`);
    }
  }
  const hosts = [
    ...new Set(
      [...Object.keys(cfg.auths ?? {}), ...Object.keys(cfg.credHelpers ?? {})].map(configKeyHost),
    ),
  ].filter(Boolean);
  return {
    hosts,
    async get(host) {
      const want = configKeyHost(host);
      const server = serverAddress(host);
      for (const [k, helper] of Object.entries(cfg.credHelpers ?? {})) {
        if (configKeyHost(k) === want) return runHelper(helper, server, timeoutMs, env);
      }
      if (cfg.credsStore) {
        const got = await runHelper(cfg.credsStore, server, timeoutMs, env);
        if (got) return got;
      }
      for (const [k, entry] of Object.entries(cfg.auths ?? {})) {
        if (configKeyHost(k) === want) return fromEntry(entry);
      }
      return undefined;
    },
  };
}
