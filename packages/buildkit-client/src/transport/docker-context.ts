/**
 * Docker contexts, read from the docker CLI's own store: `$DOCKER_CONFIG/contexts/meta/
 * <sha256(name)>/meta.json` (`{"Name", "Endpoints": {"docker": {"Host", "SkipTLSVerify"}}}`)
 * and its TLS material in `contexts/tls/<sha256(name)>/docker/{ca,cert,key}.pem`.
 *
 * Which context is in use follows docker/cli: `--context`, else none when DOCKER_HOST is set
 * (DOCKER_HOST wins), else DOCKER_CONTEXT, else `currentContext` in `config.json`; the context
 * named `default` is DOCKER_HOST or the default socket, i.e. no context at all. A context that
 * is named but not in the store is an error, as for the docker CLI: ktl does not quietly build
 * somewhere else.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BuildkitError } from '../errors';
import { nodeCrypto } from '../lazy-node';
import { dockerConfigDir, type TlsOptions, tlsFromParts } from './tls';

type Env = Readonly<Record<string, string | undefined>>;

export interface DockerContext {
  readonly name: string;
  /** The docker endpoint's Host, as stored (`unix:///...`, `tcp://host:port`, `ssh://...`). */
  readonly host: string;
  /** From the context's TLS material and SkipTLSVerify; undefined: plain. */
  readonly tls: TlsOptions | undefined;
  /** Where it was read from (its meta.json). */
  readonly metaFile: string;
}

/** How the context in use was chosen, for messages and `ktl builder ls`. */
export interface ContextChoice {
  readonly name: string;
  /** `--context`, `DOCKER_CONTEXT`, or `currentContext in /root/.docker/config.json`. */
  readonly source: string;
}

function contextId(name: string): string {
  return nodeCrypto().createHash('sha256').update(name).digest('hex');
}

function badContext(message: string, hint: string): BuildkitError {
  return new BuildkitError(message, { code: 'E_BAD_OPTION', hint });
}

/** The context in use (docker/cli's order), or undefined for none (`default`). */
export function chosenContext(env: Env, flag?: string): ContextChoice | undefined {
  const pick = (name: string | undefined, source: string) =>
    name && name !== 'default' ? { name, source } : undefined;
  if (flag !== undefined) return pick(flag, '--context');
  if (env.DOCKER_HOST) return undefined;
  if (env.DOCKER_CONTEXT) return pick(env.DOCKER_CONTEXT, 'DOCKER_CONTEXT');
  const config = join(dockerConfigDir(env), 'config.json');
  let current: unknown;
  try {
    current = (JSON.parse(readFileSync(config, 'utf8')) as { currentContext?: unknown })
      .currentContext;
  } catch {
    return undefined; // no config, or one the registry-credential reader reports
  }
  return typeof current === 'string' ? pick(current, `currentContext in ${config}`) : undefined;
}

/** Reads a context from the store; E_BAD_OPTION when it is not there or not usable. */
export function readDockerContext(name: string, env: Env, source = 'the context'): DockerContext {
  const dir = join(dockerConfigDir(env), 'contexts');
  const id = contextId(name);
  const metaFile = join(dir, 'meta', id, 'meta.json');
  let meta: {
    Name?: unknown;
    Endpoints?: { docker?: { Host?: unknown; SkipTLSVerify?: unknown } };
  };
  try {
    meta = JSON.parse(readFileSync(metaFile, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw badContext(
      code === 'ENOENT'
        ? `docker context "${name}" (${source}) does not exist: no ${metaFile}`
        : `docker context "${name}" (${source}): cannot read ${metaFile}: ${(e as Error).message}`,
      code === 'ENOENT'
        ? `\`docker context ls\` lists the contexts (DOCKER_CONFIG=${dockerConfigDir(env)}); create it with \`docker context create ${name} --docker host=...\`, or name another`
        : 'recreate the context with `docker context create`',
    );
  }
  const ep = meta.Endpoints?.docker;
  if (meta.Name !== name || typeof ep?.Host !== 'string' || ep.Host === '')
    throw badContext(
      `docker context "${name}" (${source}): ${metaFile} names no docker endpoint host`,
      'recreate the context with `docker context create NAME --docker host=...`',
    );
  const tlsDir = join(dir, 'tls', id, 'docker');
  const file = (f: string) => (existsSync(join(tlsDir, f)) ? join(tlsDir, f) : undefined);
  const skip = ep.SkipTLSVerify === true;
  const files = { ca: file('ca.pem'), cert: file('cert.pem'), key: file('key.pem') };
  // As docker/cli: TLS when the context has TLS material or skips verification; a client
  // certificate only with both halves.
  const tls =
    files.ca || files.cert || files.key || skip
      ? tlsFromParts(
          {
            ...(files.ca ? { ca: files.ca } : {}),
            ...(files.cert && files.key ? { cert: files.cert, key: files.key } : {}),
          },
          `docker context "${name}", ${tlsDir}`,
          skip,
        )
      : undefined;
  return { name, host: ep.Host, tls, metaFile };
}
