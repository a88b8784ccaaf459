/**
 * The sandbox gateway: a unix socket handed to a jailed build client instead of the builder's
 * own socket. A Docker socket is root on the host (create a privileged container, mount /),
 * so the jail never gets it; the gateway forwards only BuildKit's API — `/grpc` (filtered call
 * by call) and `/session` (the daemon calling back into the client) for an engine, the Control
 * service for buildkitd — and refuses everything else with a message saying why. With `auth`
 * it also answers, itself, the registry credential calls the client relays (auth-endpoint.ts).
 */
import { chmodSync, rmSync } from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import type { SolveRequest } from '../gen/moby/buildkit/v1/control';
import type { AuthAnswerer } from '../session/auth-service';
import type { BuildkitAddress, EngineAddress } from '../transport/address';
import { cleartextStream, type TlsOptions } from '../transport/tls';
import { dialRaw, httpUpgrade } from '../transport/upgrade';
import { serveAuthCall, sniffAuthCall } from './auth-endpoint';
import { DEFAULT_ALLOWED_METHODS, serveFiltered } from './grpc-filter';
import { header, type RequestHead, readRequestHead, refuseHttp } from './http-head';

export interface GatewayOptions {
  /**
   * The real builder. A promise lets the gateway listen (and the jail start) while the builder
   * is still being found; connections wait for it, and fail like an unreachable builder if it
   * rejects.
   */
  upstream: BuildkitAddress | Promise<BuildkitAddress>;
  /**
   * The TLS the upstream is reached with (the connection that found the builder has it). Only
   * this side holds the client key: the jail talks plain HTTP/2 to the gateway's socket.
   */
  tls?: TlsOptions | Promise<TlsOptions | undefined> | undefined;
  /** Where to listen; created 0600, removed on close. */
  socketPath: string;
  /** Control methods allowed (full gRPC paths); defaults to Solve, Status, Info, ListWorkers, Session. */
  allowMethods?: readonly string[];
  checkSolve?: (req: SolveRequest) => string | undefined;
  /**
   * Only the build session passes: an engine's `/session` upgrade, or Control.Session on a
   * buildkitd. For a client that serves files while someone else sends the Solve.
   */
  sessionOnly?: boolean;
  /**
   * Answers the registry credential calls the jailed client relays (`POST /ktl/auth/<Method>`
   * on this socket, see auth-endpoint.ts): the daemon asks the client's session, the client
   * asks the gateway, and the credentials never have to be where the client can read them.
   */
  auth?: AuthAnswerer;
  /** Called with one line per refused request or failure (`[gateway] ...` in ktl's logs). */
  log?: (line: string) => void;
}

export interface Gateway {
  /**
   * The address the jailed client should use (docker://unix://... or unix://...). With a
   * promised upstream, known once it resolves (reading it before throws).
   */
  readonly address: string;
  readonly socketPath: string;
  /** Everything refused so far, for tests and reports. */
  readonly refused: readonly string[];
  close(): Promise<void>;
}

const ENGINE_PATH = /^(\/v1\.[0-9]{1,3})?\/(grpc|session|_ping)$/;

export interface SolvePolicy {
  /** Entitlements the user asked for on the command line (`network.host`, `security.insecure`). */
  entitlements?: readonly string[];
  /** Refuse a Solve whose RUN steps would have network (`--hermetic`). */
  requireNetworkNone?: boolean;
  /** When set, image-type exports may only use these names (the user's -t tags). */
  imageNames?: readonly string[];
  /**
   * When set, cache exports may only be `inline` (it travels in the image, whose names are
   * checked above) or `registry` to one of these refs (the user's --cache-to refs).
   */
  cacheExportRefs?: readonly string[];
}

/** The checks `ktl build` applies to Solve requests coming out of the sandbox. */
export function solvePolicy(p: SolvePolicy): (req: SolveRequest) => string | undefined {
  return (req) => {
    for (const e of req.Entitlements) {
      if (!(p.entitlements ?? []).includes(e))
        return `entitlement ${e} was not granted on the command line`;
    }
    if (p.requireNetworkNone && req.FrontendAttrs['force-network-mode'] !== 'none') {
      return 'a hermetic build must run its steps without network (force-network-mode=none)';
    }
    if (p.imageNames) {
      const exps = [
        ...req.Exporters.map((e) => ({ type: e.Type, attrs: e.Attrs })),
        ...(req.ExporterDeprecated
          ? [{ type: req.ExporterDeprecated, attrs: req.ExporterAttrsDeprecated }]
          : []),
      ];
      for (const e of exps) {
        const names = (e.attrs.name ?? '')
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        for (const n of names)
          if (!p.imageNames.includes(n))
            return `export names image "${n}", which was not given with -t`;
      }
    }
    if (p.cacheExportRefs) {
      const c = req.Cache;
      if (c?.ExportRefDeprecated) {
        return `cache export to "${c.ExportRefDeprecated}" uses the deprecated ExportRef field; ktl never sends it`;
      }
      for (const e of c?.Exports ?? []) {
        if (e.Type === 'inline') continue;
        if (e.Type !== 'registry') {
          return `cache export type ${e.Type} is not allowed from the sandbox (only registry and inline)`;
        }
        const ref = e.Attrs.ref ?? '';
        if (!p.cacheExportRefs.includes(ref))
          return `cache export to "${ref}", which was not given with --cache-to`;
      }
    }
    return undefined;
  };
}

async function upstreamH2(
  addr: BuildkitAddress,
  tls: TlsOptions | undefined,
): Promise<http2.ClientHttp2Session> {
  const engine: EngineAddress = addr.kind === 'docker' ? addr.engine : addr;
  let sock: net.Socket = await dialRaw(
    engine,
    tls,
    10_000,
    addr.kind === 'docker' ? ['http/1.1'] : ['h2'],
  );
  if (addr.kind === 'docker') sock = await httpUpgrade(sock, { path: '/grpc' });
  const stream = cleartextStream(sock);
  return http2.connect(tls && addr.kind !== 'docker' ? 'https://buildkit' : 'http://buildkit', {
    createConnection: () => stream,
  });
}

export async function startGateway(opts: GatewayOptions): Promise<Gateway> {
  const refused: string[] = [];
  const log = (line: string) => {
    if (line.startsWith('refused')) refused.push(line);
    opts.log?.(line);
  };
  const allow = new Set(
    opts.sessionOnly
      ? ['/moby.buildkit.v1.Control/Session']
      : (opts.allowMethods ?? DEFAULT_ALLOWED_METHODS),
  );
  const filter = {
    allowMethods: allow,
    log,
    ...(opts.checkSolve ? { checkSolve: opts.checkSolve } : {}),
  };
  const conns = new Set<net.Socket>();
  let upstream: BuildkitAddress | undefined;
  let tls: TlsOptions | undefined;
  const upstreamReady = Promise.all([opts.upstream, opts.tls]).then(([u, t]) => {
    upstream = u;
    tls = t;
    return u;
  });
  upstreamReady.catch(() => {}); // each connection reports it

  const onEngineConnection = async (sock: net.Socket, up: BuildkitAddress) => {
    let head: RequestHead;
    try {
      head = await readRequestHead(sock);
    } catch (e) {
      log(`refused a connection: ${(e as Error).message}`);
      return refuseHttp(sock, 400, 'Bad Request', `ktl sandbox gateway: ${(e as Error).message}`);
    }
    const m = ENGINE_PATH.exec(head.target);
    const what = `${head.method} ${head.target.slice(0, 200)}`;
    if (
      !m ||
      (m[2] === '_ping' ? !['GET', 'HEAD'].includes(head.method) : head.method !== 'POST')
    ) {
      log(`refused ${what}: the sandbox may only use BuildKit's /grpc and /session`);
      return refuseHttp(
        sock,
        403,
        'Forbidden',
        `ktl sandbox gateway: ${what} is not part of the BuildKit API; the sandbox cannot use the Docker API`,
      );
    }
    if (m[2] === '_ping') return refuseHttp(sock, 200, 'OK', 'OK');
    if (
      (header(head, 'upgrade') ?? '').toLowerCase() !== 'h2c' ||
      (head.rest.length > 0 && m[2] === 'session')
    ) {
      log(`refused ${what}: expected an h2c upgrade with no body`);
      return refuseHttp(sock, 400, 'Bad Request', 'ktl sandbox gateway: expected Upgrade: h2c');
    }
    if (m[2] === 'grpc' && opts.sessionOnly) {
      log(`refused ${what}: this client may only open its build session`);
      return refuseHttp(
        sock,
        403,
        'Forbidden',
        'ktl sandbox gateway: only the build session is served here; the build is driven from outside the sandbox',
      );
    }
    try {
      if (m[2] === 'grpc') {
        const h2 = await upstreamH2(up, tls);
        sock.write(
          'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n',
        );
        if (head.rest.length) sock.unshift(head.rest);
        serveFiltered(sock, h2, filter);
        return;
      }
      // /session: the daemon becomes the HTTP/2 client of the jail. Only the session headers
      // are passed on (rebuilt, no body), and nothing more is read from the jail until the
      // engine has switched protocols, so no second request can be smuggled to the engine.
      const engine = up.kind === 'docker' ? up.engine : up;
      const passed = head.headers
        .filter(([k]) => k.startsWith('x-docker-expose-session-'))
        .map(([k, v]) => [k, v] as const);
      const engineSock = await httpUpgrade(await dialRaw(engine, tls), {
        path: '/session',
        headers: passed,
      });
      sock.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n');
      sock.pipe(engineSock).pipe(sock);
      engineSock.resume();
      sock.resume();
      const end = () => {
        sock.destroy();
        engineSock.destroy();
      };
      sock.on('close', end);
      engineSock.on('close', end);
      sock.on('error', end);
      engineSock.on('error', end);
    } catch (e) {
      log(`builder unreachable for ${what}: ${(e as Error).message}`);
      refuseHttp(
        sock,
        502,
        'Bad Gateway',
        `ktl sandbox gateway: builder unreachable: ${(e as Error).message}`,
      );
    }
  };

  const onNativeConnection = async (sock: net.Socket, up: BuildkitAddress) => {
    try {
      serveFiltered(sock, await upstreamH2(up, tls), filter);
    } catch (e) {
      log(`builder unreachable: ${(e as Error).message}`);
      sock.destroy();
    }
  };

  const toUpstream = (sock: net.Socket) =>
    upstreamReady.then(
      (up) => (up.kind === 'docker' ? onEngineConnection(sock, up) : onNativeConnection(sock, up)),
      (e: unknown) => {
        log(`builder unreachable: ${(e as Error).message}`);
        sock.destroy();
      },
    );
  const auth = opts.auth;
  const server = net.createServer((sock) => {
    conns.add(sock);
    sock.on('close', () => conns.delete(sock));
    sock.on('error', () => sock.destroy());
    if (!auth) return void toUpstream(sock);
    // Answered here, builder or not; anything else goes on as if nothing had been read.
    void sniffAuthCall(sock).then((kind) => {
      if (kind === 'auth') return serveAuthCall(sock, auth, log);
      if (kind === 'other') return toUpstream(sock);
    });
  });
  rmSync(opts.socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.socketPath, () => resolve());
  });
  chmodSync(opts.socketPath, 0o600);
  if (!(opts.upstream instanceof Promise)) await upstreamReady;
  return {
    get address() {
      if (!upstream) throw new Error('the gateway address is known once its upstream is');
      return `${upstream.kind === 'docker' ? 'docker://unix://' : 'unix://'}${opts.socketPath}`;
    },
    socketPath: opts.socketPath,
    refused,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of conns) c.destroy();
        server.close(() => {
          rmSync(opts.socketPath, { force: true });
          resolve();
        });
      }),
  };
}
