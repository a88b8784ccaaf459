/**
 * Builder addresses.
 *
 *   unix:///run/buildkit/buildkitd.sock   buildkitd's own gRPC socket
 *   tcp://host:1234                       buildkitd over TCP (TLS when ca/cert/key are given)
 *   docker://unix:///var/run/docker.sock  BuildKit embedded in a Docker engine, reached through
 *   docker://tcp://host:2376              the engine's HTTP API (`POST /grpc` upgraded to h2c)
 *   docker:///var/run/docker.sock         shorthand for docker://unix:///var/run/docker.sock
 *   docker://                             the default engine socket
 *
 * A `docker://` address wraps an engine address in DOCKER_HOST syntax, so
 * `docker://$DOCKER_HOST` always works.
 */
import { BuildkitError } from '../errors';

export const DEFAULT_BUILDKITD_SOCKET = '/run/buildkit/buildkitd.sock';
export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

export type EngineAddress =
  | { readonly kind: 'unix'; readonly path: string }
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number };

export type BuildkitAddress =
  | EngineAddress
  | { readonly kind: 'docker'; readonly engine: EngineAddress };

function bad(input: string, why: string): BuildkitError {
  return new BuildkitError(`invalid builder address "${input}": ${why}`, {
    code: 'E_BAD_ADDRESS',
    hint: 'use unix:///path/to.sock, tcp://host:port or docker://unix:///var/run/docker.sock',
  });
}

function parseUnix(input: string, rest: string): EngineAddress {
  // unix:///abs/path (the usual form) and unix:/abs/path both name an absolute path.
  const path = rest.startsWith('//') ? rest.slice(2) : rest;
  if (!path.startsWith('/')) throw bad(input, 'unix socket path must be absolute');
  if (path.includes('\0')) throw bad(input, 'unix socket path contains NUL');
  return { kind: 'unix', path };
}

function parseTcp(input: string, rest: string): EngineAddress {
  if (!rest.startsWith('//')) throw bad(input, 'expected tcp://host:port');
  const hostPort = rest.slice(2).replace(/\/+$/, '');
  // [v6addr]:port or host:port
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:/[\]]+)):(\d{1,5})$/.exec(hostPort);
  if (!m) throw bad(input, 'expected tcp://host:port with an explicit port');
  const port = Number(m[3]);
  if (port < 1 || port > 65535) throw bad(input, `port ${port} out of range`);
  return { kind: 'tcp', host: (m[1] ?? m[2])!, port };
}

function parseEngine(input: string, s: string): EngineAddress {
  if (s.startsWith('unix:')) return parseUnix(input, s.slice(5));
  if (s.startsWith('tcp:')) return parseTcp(input, s.slice(4));
  throw bad(input, 'engine address must start with unix:// or tcp://');
}

export function parseAddress(input: string): BuildkitAddress {
  const s = input.trim();
  if (s.startsWith('docker:')) {
    const rest = s.slice('docker:'.length);
    if (!rest.startsWith('//')) throw bad(input, 'expected docker://<engine address>');
    const engine = rest.slice(2);
    if (engine === '')
      return { kind: 'docker', engine: { kind: 'unix', path: DEFAULT_DOCKER_SOCKET } };
    if (engine.startsWith('/')) return { kind: 'docker', engine: parseUnix(input, engine) };
    return { kind: 'docker', engine: parseEngine(input, engine) };
  }
  if (s.startsWith('unix:') || s.startsWith('tcp:')) return parseEngine(input, s);
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(s)?.[1];
  if (scheme) throw bad(input, `unsupported scheme "${scheme}"`);
  throw bad(input, 'missing scheme');
}

export function formatEngine(a: EngineAddress): string {
  if (a.kind === 'unix') return `unix://${a.path}`;
  return a.host.includes(':') ? `tcp://[${a.host}]:${a.port}` : `tcp://${a.host}:${a.port}`;
}

export function formatAddress(a: BuildkitAddress): string {
  return a.kind === 'docker' ? `docker://${formatEngine(a.engine)}` : formatEngine(a);
}
