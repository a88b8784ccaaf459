/**
 * Image references normalized the way Docker does (distribution/reference
 * ParseNormalizedNamed + TagNameOnly): `busybox` is `docker.io/library/busybox:latest`.
 * The image exporter must get the full form: a short name is stored under a name the engine
 * cannot resolve afterwards (`docker image ls` shows nothing).
 */

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$/;

export interface ImageName {
  /** `docker.io`, `127.0.0.1:5000`, ... */
  readonly domain: string;
  /** `library/busybox`. */
  readonly path: string;
  readonly tag: string | undefined;
  readonly digest: string | undefined;
  /** The full normalized reference, with `:latest` added when neither tag nor digest is given. */
  readonly full: string;
}

export class ImageNameError extends Error {
  constructor(
    readonly input: string,
    readonly reason: string,
  ) {
    super(`invalid image name ${JSON.stringify(input)}: ${reason}`);
    this.name = 'ImageNameError';
  }
}

export function parseImageName(input: string): ImageName {
  const fail = (why: string): never => {
    throw new ImageNameError(input, why);
  };
  if (input === '') fail('empty');
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) fail(`bad digest ${JSON.stringify(digest)}`);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag))
      fail(`bad tag ${JSON.stringify(tag)} (letters, digits, _ . -, at most 128)`);
  }
  const slash = rest.indexOf('/');
  const first = slash < 0 ? '' : rest.slice(0, slash);
  let domain = 'docker.io';
  let path = rest;
  if (
    slash >= 0 &&
    (first.includes('.') ||
      first.includes(':') ||
      first === 'localhost' ||
      first !== first.toLowerCase())
  ) {
    domain = first;
    path = rest.slice(slash + 1);
    if (!DOMAIN.test(domain)) fail(`bad registry host ${JSON.stringify(domain)}`);
  }
  if (domain === 'index.docker.io') domain = 'docker.io';
  if (path !== path.toLowerCase()) fail('repository name must be lowercase');
  if (domain === 'docker.io' && !path.includes('/')) path = `library/${path}`;
  for (const c of path.split('/')) {
    if (!PATH_COMPONENT.test(c)) fail(`bad path component ${JSON.stringify(c)}`);
  }
  if (`${domain}/${path}`.length > 255) fail('longer than 255 characters');
  const effectiveTag = tag ?? (digest === undefined ? 'latest' : undefined);
  const full =
    `${domain}/${path}` +
    (effectiveTag === undefined ? '' : `:${effectiveTag}`) +
    (digest === undefined ? '' : `@${digest}`);
  return { domain, path, tag: effectiveTag, digest, full };
}

/** `busybox` → `docker.io/library/busybox:latest`; throws ImageNameError. */
export function normalizeImageName(input: string): string {
  return parseImageName(input).full;
}

/** Loopback registries (127.0.0.0/8, ::1, localhost) speak plain HTTP in practice. */
export function isLoopbackRegistry(domain: string): boolean {
  const host = domain.startsWith('[') ? domain.slice(1, domain.indexOf(']')) : domain.split(':')[0];
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host ?? '');
}
