/**
 * What a builder can do, where its API does not say: a Docker engine's API version comes from
 * `GET /_ping` (the `Api-Version` header), which tells its embedded BuildKit's age. Used to
 * refuse, with a reason, what an older builder would silently ignore (several exporters in one
 * build need BuildKit v0.13, i.e. Docker 26 / API 1.45).
 */
import { BuildkitError } from '../errors';
import { parseAddress } from './address';
import type { BuildkitConnection } from './connect';
import { dialRaw, type TlsOptions } from './upgrade';

/** The engine's API version (`1.45`), or undefined when not a Docker engine or not told. */
export async function engineApiVersion(
  address: string,
  tls?: TlsOptions,
  timeoutMs = 3000,
): Promise<string | undefined> {
  return (await engineVersions(address, tls, timeoutMs))?.api;
}

/** What a Docker engine's `_ping` says of itself: API version and `Server` (`Docker/20.10.24`). */
type EngineVersions = { api: string | undefined; server: string | undefined };

// One `_ping` per engine and process: connecting, the exporter checks and the archive checks of
// one build all ask. A failed ping is not kept (the next caller tries again).
const pings = new Map<string, Promise<EngineVersions | undefined>>();

export function engineVersions(
  address: string,
  tls?: TlsOptions,
  timeoutMs = 3000,
): Promise<EngineVersions | undefined> {
  const key = `${address}\0${tls ? 'tls' : ''}`;
  let p = pings.get(key);
  if (!p) {
    p = pingEngine(address, tls, timeoutMs);
    pings.set(key, p);
    p.then((v) => {
      if (v?.api === undefined) pings.delete(key);
    });
  }
  return p;
}

async function pingEngine(
  address: string,
  tls: TlsOptions | undefined,
  timeoutMs: number,
): Promise<EngineVersions | undefined> {
  const addr = parseAddress(address);
  if (addr.kind !== 'docker') return undefined;
  let sock: Awaited<ReturnType<typeof dialRaw>>;
  try {
    sock = await dialRaw(addr.engine, tls, timeoutMs);
  } catch {
    return undefined;
  }
  return new Promise((resolve) => {
    let head = '';
    const done = (v: EngineVersions | undefined) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    sock.on('data', (c: Buffer) => {
      head += c.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end >= 0 || head.length > 16_384) {
        const h = head.slice(0, end);
        done({
          api: /\r\napi-version: *([0-9.]+)/i.exec(h)?.[1],
          server: /\r\nserver: *Docker\/(\S+)/i.exec(h)?.[1],
        });
      }
    });
    sock.on('error', () => done(undefined));
    sock.on('end', () => done(undefined));
    sock.write('GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n');
  });
}

/**
 * How an error names a Docker engine: `Docker 20.10.24+dfsg1, API 1.41` (from its `_ping`);
 * unknown parts say so.
 */
export async function describeEngine(address: string, tls?: TlsOptions): Promise<string> {
  const v = await engineVersions(address, tls);
  return `Docker ${v?.server ?? '(version unknown)'}, API ${v?.api ?? '?'}`;
}

export function apiAtLeast(version: string, min: readonly number[]): boolean {
  const parts = version.replace(/^v/, '').split(/[.+-]/).map(Number);
  for (let i = 0; i < min.length; i++) {
    const p = parts[i] ?? 0;
    if (Number.isNaN(p)) return true; // unparseable: do not refuse
    if (p !== min[i]) return p > min[i]!;
  }
  return true;
}

/**
 * Fails with E_UNSUPPORTED when `exporters` > 1 and the builder is known
 * to be older than BuildKit v0.13 (which reads only the first exporter and drops the rest).
 * Unknown versions (e.g. BuildKit built without a version, an engine behind a proxy) pass.
 */
export async function checkMultipleExporters(
  conn: BuildkitConnection,
  exporters: number,
  tls?: TlsOptions,
): Promise<void> {
  if (exporters <= 1) return;
  const api = await engineApiVersion(conn.address, tls);
  if (api !== undefined) {
    if (!apiAtLeast(api, [1, 45])) {
      throw new BuildkitError(
        `this engine (${await describeEngine(conn.address, tls)}) exports one output per build; several need Docker 26+ (API 1.45)`,
        { code: 'E_UNSUPPORTED', hint: 'give one -o/--load/--push, or upgrade the engine' },
      );
    }
    return;
  }
  if (conn.address.startsWith('docker://')) return;
  const v = await conn.info().catch(() => undefined);
  const version = v?.version ?? 'before v0.11';
  if (
    v === undefined ||
    (/^v\d/.test(version) && !/^v0\.0\.0/.test(version) && !apiAtLeast(version, [0, 13]))
  ) {
    throw new BuildkitError(
      `this BuildKit (${version}) exports one output per build; several need v0.13+`,
      { code: 'E_UNSUPPORTED', hint: 'give one -o/--load/--push, or upgrade buildkitd' },
    );
  }
}
