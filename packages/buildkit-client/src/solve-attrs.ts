/**
 * The dockerfile.v0 frontend's options, as SolveRequest.FrontendAttrs (the names buildx
 * sends), and the session directories they refer to.
 */
import { basename } from 'node:path';

export type NetworkMode = 'default' | 'none' | 'host';

export interface FrontendOptions {
  readonly buildArgs?: Readonly<Record<string, string>> | undefined;
  readonly target?: string | undefined;
  /** e.g. `['linux/amd64']`. */
  readonly platforms?: readonly string[] | undefined;
  readonly noCache?: boolean | undefined;
  /** Always resolve FROM images from the registry, not the local store. */
  readonly pull?: boolean | undefined;
  readonly labels?: Readonly<Record<string, string>> | undefined;
  /** Network of RUN steps; `host` needs the `network.host` entitlement (requested for it). */
  readonly network?: NetworkMode | undefined;
  /** Extra /etc/hosts entries for RUN steps, `{ host, ip }`. */
  readonly addHosts?: ReadonlyArray<{ readonly host: string; readonly ip: string }> | undefined;
  /**
   * Named contexts (`FROM name`, `COPY --from=name`): an absolute local directory (served
   * over the session), or a source the daemon fetches itself (`docker-image://ref`,
   * `https://...`, a git URL) passed through unchanged.
   */
  readonly namedContexts?: Readonly<Record<string, string>> | undefined;
  /**
   * Attestations to make: type (`provenance`) → its attributes as buildx sends them
   * (`type=provenance,mode=max`), sent as `attest:<type>`.
   */
  readonly attests?: Readonly<Record<string, string>> | undefined;
  /** Extra frontend attributes, sent as given (they win over the above). */
  readonly frontendAttrs?: Readonly<Record<string, string>> | undefined;
}

/** Sources the daemon resolves itself; anything else is a local directory. */
const REMOTE_CONTEXT = /^(docker-image|https?|git|ssh):\/\/|^git@|\.git(#.*)?$/;

export function isRemoteContext(value: string): boolean {
  return REMOTE_CONTEXT.test(value);
}

/**
 * Session directory name for a named context. Prefixed so a context called `context` or
 * `dockerfile` cannot shadow the build context or the Dockerfile directory.
 */
export function namedContextDir(name: string): string {
  return `named:${name}`;
}

export function frontendAttrs(o: FrontendOptions, dockerfile: string): Record<string, string> {
  const attrs: Record<string, string> = { filename: basename(dockerfile) };
  for (const [k, v] of Object.entries(o.buildArgs ?? {})) attrs[`build-arg:${k}`] = v;
  for (const [k, v] of Object.entries(o.labels ?? {})) attrs[`label:${k}`] = v;
  if (o.target) attrs.target = o.target;
  if (o.platforms && o.platforms.length > 0) attrs.platform = o.platforms.join(',');
  if (o.noCache) attrs['no-cache'] = '';
  if (o.pull) attrs['image-resolve-mode'] = 'pull';
  if (o.network && o.network !== 'default') attrs['force-network-mode'] = o.network;
  if (o.addHosts && o.addHosts.length > 0) {
    attrs['add-hosts'] = o.addHosts.map((h) => `${h.host}=${h.ip}`).join(',');
  }
  for (const [type, v] of Object.entries(o.attests ?? {})) attrs[`attest:${type}`] = v;
  for (const [name, v] of Object.entries(o.namedContexts ?? {})) {
    attrs[`context:${name}`] = isRemoteContext(v) ? v : `local:${namedContextDir(name)}`;
  }
  return { ...attrs, ...(o.frontendAttrs ?? {}) };
}

/** Session directories for the local named contexts. */
export function namedContextDirs(o: FrontendOptions): Record<string, string> {
  const dirs: Record<string, string> = {};
  for (const [name, v] of Object.entries(o.namedContexts ?? {})) {
    if (!isRemoteContext(v)) dirs[namedContextDir(name)] = v;
  }
  return dirs;
}

export function entitlementsFor(o: FrontendOptions): string[] {
  return o.network === 'host' ? ['network.host'] : [];
}
