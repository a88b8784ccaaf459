/**
 * The Docker engine serves BuildKit's gRPC API and the build session behind HTTP/1.1 upgrades:
 * `POST /grpc` (we become the HTTP/2 client) and `POST /session` (the daemon becomes the
 * HTTP/2 client and we serve). Only `Upgrade: h2c` is accepted; `h2` is refused.
 */
import * as net from 'node:net';
import { BuildkitError } from '../errors';
import { nodeTls } from '../lazy-node';
import { type EngineAddress, formatEngine } from './address';
import { classifyTlsError, plainToTlsError, type TlsOptions, tlsConnectOptions } from './tls';

export type { TlsOptions } from './tls';

const MAX_RESPONSE_HEAD = 64 * 1024;

/** What a TLS socket was dialled for: its later failures (TLS 1.3 alerts) are explained with it. */
const dialled = new WeakMap<net.Socket, { address: string; tls: TlsOptions }>();

/** The E_TLS error for a failure on a socket dialRaw opened with TLS, if it is one. */
export function tlsFailureOn(
  sock: net.Socket,
  e: unknown,
  engine = true,
): BuildkitError | undefined {
  const d = dialled.get(sock);
  return d ? classifyTlsError(e, d.address, d.tls, engine) : undefined;
}

/** Opens a raw byte stream to an engine (or buildkitd) address. */
export function dialRaw(
  addr: EngineAddress,
  tlsOpts?: TlsOptions,
  timeoutMs = 10_000,
  /** ALPN over TLS: `http/1.1` for an engine's HTTP API, `h2` for buildkitd's gRPC (which
   * gRPC servers over TLS insist on). */
  alpn: readonly string[] = ['http/1.1'],
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    let sock: net.Socket;
    const useTls = addr.kind === 'tcp' && tlsOpts !== undefined;
    if (addr.kind === 'unix') sock = net.connect({ path: addr.path });
    else if (useTls) {
      sock = nodeTls().connect({
        host: addr.host,
        port: addr.port,
        ...tlsConnectOptions(addr.host, tlsOpts),
        ALPNProtocols: [...alpn],
      });
      // How the user named it: an engine's API (HTTP/1.1) is a docker:// address.
      const address = alpn.includes('h2') ? formatEngine(addr) : `docker://${formatEngine(addr)}`;
      dialled.set(sock, { address, tls: tlsOpts });
    } else sock = net.connect({ host: addr.host, port: addr.port });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    const onErr = (err: Error) => {
      clearTimeout(timer);
      reject((useTls && tlsFailureOn(sock, err, !alpn.includes('h2'))) || err);
    };
    sock.once('error', onErr);
    sock.once(useTls ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      sock.off('error', onErr);
      resolve(sock);
    });
  });
}

export interface UpgradeRequest {
  /** `/grpc` or `/session`. */
  readonly path: string;
  /** Extra request headers. Repeated names are sent as separate lines on purpose. */
  readonly headers?: ReadonlyArray<readonly [string, string]>;
  readonly timeoutMs?: number;
}

function headerSafe(s: string): boolean {
  return !/[\r\n\0]/.test(s);
}

/**
 * Sends the upgrade request on `sock` and resolves with the same socket once the engine has
 * answered `101 Switching Protocols`. Any bytes that arrived in the same read as the response
 * head (the start of the HTTP/2 stream) are pushed back with `unshift` so the next reader sees
 * them. Rejects with E_UPGRADE carrying the engine's status and body otherwise.
 */
export function httpUpgrade(sock: net.Socket, req: UpgradeRequest): Promise<net.Socket> {
  const lines = [
    `POST ${req.path} HTTP/1.1`,
    'Host: docker',
    'Connection: Upgrade',
    'Upgrade: h2c',
    'Content-Length: 0',
  ];
  for (const [k, v] of req.headers ?? []) {
    if (!headerSafe(k) || !headerSafe(v)) throw new Error(`invalid header ${JSON.stringify(k)}`);
    lines.push(`${k}: ${v}`);
  }
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const timer = setTimeout(
      () => fail(new Error(`no answer to POST ${req.path} within ${req.timeoutMs ?? 10_000} ms`)),
      req.timeoutMs ?? 10_000,
    );
    const cleanup = () => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('error', fail);
      sock.off('end', onEnd);
    };
    function fail(err: Error) {
      cleanup();
      sock.destroy();
      reject(
        BuildkitError.is(err)
          ? err
          : (tlsFailureOn(sock, err) ??
              new BuildkitError(err.message, { code: 'E_UPGRADE', cause: err })),
      );
    }
    let ended = false;
    const onEnd = () => {
      ended = true;
      if (buf.includes('\r\n\r\n')) onData(Buffer.alloc(0));
      else fail(new Error(`engine closed the connection during POST ${req.path}`));
    };
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (buf.length > MAX_RESPONSE_HEAD) fail(new Error('oversized response head'));
        return;
      }
      const head = buf.subarray(0, end).toString('latin1');
      const rest = buf.subarray(end + 4);
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1];
      if (status === '101') {
        cleanup();
        sock.pause();
        if (rest.length > 0) sock.unshift(rest);
        resolve(sock);
        return;
      }
      // Error answers from the engine are short JSON bodies ({"message": "..."}); wait for
      // the whole body when its length is announced, so the message is not cut.
      const len = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? '0');
      if (rest.length < len && rest.length < 4096 && !ended) return;
      const body = rest.toString('utf8').trim().slice(0, 500);
      const first = head.split('\r\n')[0] ?? head;
      // Go's HTTP server answers plain HTTP on its TLS port so (dockerd --tlsverify).
      if (status === '400' && /HTTP request to an HTTPS server/i.test(body)) {
        const where = sock.remoteAddress
          ? `tcp://${sock.remoteFamily === 'IPv6' ? `[${sock.remoteAddress}]` : sock.remoteAddress}:${sock.remotePort}`
          : 'this address';
        fail(plainToTlsError(`docker://${where}`, true, `the engine answered: ${body}`));
        return;
      }
      fail(
        new BuildkitError(`engine refused POST ${req.path}: ${first}${body ? ` ${body}` : ''}`, {
          code: 'E_UPGRADE',
          hint:
            status === '404'
              ? 'this Docker engine has no BuildKit endpoint; use Docker 18.09+ or buildkitd'
              : undefined,
        }),
      );
    };
    sock.on('data', onData);
    sock.on('error', fail);
    sock.on('end', onEnd);
    sock.write(`${lines.join('\r\n')}\r\n\r\n`);
  });
}
