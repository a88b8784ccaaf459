/**
 * connect(): one gRPC channel to a BuildKit Control service, however it is reached.
 */

import type { Duplex } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { BuildkitError } from '../errors';
import {
  ControlClient,
  InfoRequest,
  type InfoResponse,
  ListWorkersRequest,
  type ListWorkersResponse,
} from '../gen/moby/buildkit/v1/control';
import type { Platform } from '../gen/pb/ops';
import { type BuildkitAddress, type EngineAddress, formatAddress, parseAddress } from './address';
import { apiAtLeast, engineApiVersion } from './engine-ping';
import { fromGrpc, unary } from './grpc-errors';
import { startUpgradeProxy, type UpgradeProxy } from './proxy';
import { openControlSession, type SessionHandshake, sessionHeaders } from './session-stream';
import { cleartextStream, plainToTlsError, type TlsOptions } from './tls';
import { dialRaw, httpUpgrade, tlsFailureOn } from './upgrade';

export interface ConnectOptions {
  /** TLS for `tcp://` and `docker://tcp://` addresses. */
  readonly tls?: TlsOptions | undefined;
  /**
   * Check the builder answers before resolving (default true). The check dials the socket
   * itself first so a failure names its cause (missing socket, refused, permission).
   */
  readonly verify?: boolean | undefined;
  /** Budget for the verification, in ms (default 5000). */
  readonly timeoutMs?: number | undefined;
  /**
   * How to carry build sessions. `auto` (default): the engine's `POST /session` upgrade for
   * docker:// addresses (about 2x faster), Control.Session otherwise. `control`: always the
   * Control.Session tunnel (what buildkitd needs; lets tests exercise it against an engine).
   */
  readonly sessionTransport?: 'auto' | 'control' | undefined;
  /**
   * How to reach a Docker engine's BuildKit. `auto` (default): native gRPC (HTTP/2 with prior
   * knowledge on the API socket, sessions over Control.Session) when the engine's API is 1.53+
   * (Docker 29.2+) and the socket is local or plain tcp, with a fallback to the `/grpc` and
   * `/session` upgrades, which every engine since 18.09 has. `upgrade` / `native`: only that.
   */
  readonly engineGrpc?: 'auto' | 'upgrade' | 'native' | undefined;
}

/** The engine API version from which Docker serves BuildKit's gRPC natively on its socket. */
export const NATIVE_GRPC_API = [1, 53] as const;

export interface BuildkitVersionInfo {
  /** e.g. `github.com/moby/buildkit` or `github.com/docker/docker` builds of it. */
  readonly package: string;
  readonly version: string;
  readonly revision: string;
}

export interface WorkerInfo {
  readonly id: string;
  readonly labels: Readonly<Record<string, string>>;
  /** `os/arch[/variant]`, e.g. `linux/amd64`, `linux/arm/v7`. */
  readonly platforms: readonly string[];
}

export interface BuildkitConnection {
  /** The address as connected, normalized (`docker://unix:///var/run/docker.sock`). */
  readonly address: string;
  /**
   * How the Control API is reached: `grpc` (buildkitd), `engine-native` (a Docker engine's
   * own gRPC, API 1.53+), `engine-upgrade` (the engine's `/grpc` upgrade).
   */
  readonly transport?: 'grpc' | 'engine-native' | 'engine-upgrade';
  /**
   * The TLS it was reached with (undefined: none). Whatever dials the builder again for this
   * connection (the engine API, the sandbox's gateway) must use the same.
   */
  readonly tls?: TlsOptions | undefined;
  /** Typed client for moby.buildkit.v1.Control; requests must be built with `X.fromPartial`. */
  readonly control: ControlClient;
  info(timeoutMs?: number): Promise<BuildkitVersionInfo>;
  listWorkers(timeoutMs?: number): Promise<WorkerInfo[]>;
  /**
   * Opens the byte stream the build session runs on; the daemon is the HTTP/2 client on it and
   * the caller serves. Docker engines: `POST /session` upgrade. buildkitd: Control.Session.
   */
  openSessionTransport(h: SessionHandshake): Promise<Duplex>;
  close(): Promise<void>;
}

const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  // Status batches and exporter responses can exceed grpc-js's 4 MiB default.
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
  'grpc.max_send_message_length': 64 * 1024 * 1024,
};

export function formatPlatform(p: Platform): string {
  return [p.OS, p.Architecture, p.Variant].filter((x) => x !== '').join('/');
}

const H2_PREFACE = Buffer.concat([
  Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'),
  // An empty SETTINGS frame: length 0, type 4, no flags, stream 0.
  Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]),
]);

/**
 * What a gRPC server (buildkitd) says to HTTP/2's client preface: its own SETTINGS frame
 * (`h2`), the text of an HTTP/1 server such as a Docker engine's API (`http1`), nothing before
 * it closes (`closed`: a TLS port spoken to in plain text, or a TLS server that refuses the
 * client's certificate by hanging up), or nothing in time (`silent`).
 */
function h2Answer(sock: Duplex, timeoutMs: number): Promise<'h2' | 'http1' | 'closed' | 'silent'> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    const timer = setTimeout(() => done('silent'), timeoutMs);
    const done = (v: 'h2' | 'http1' | 'closed' | 'silent', err?: unknown) => {
      clearTimeout(timer);
      sock.removeAllListeners('data');
      sock.destroy();
      if (err !== undefined) reject(err);
      else resolve(v);
    };
    sock.on('data', (c: Buffer) => {
      got = Buffer.concat([got, c]);
      if (got.subarray(0, 5).toString('latin1') === 'HTTP/') return done('http1');
      if (got.length >= 9) done(got[3] === 4 ? 'h2' : 'http1');
    });
    sock.once('error', (e) => done('closed', e));
    sock.once('end', () => done('closed'));
    sock.write(H2_PREFACE);
  });
}

/** Whether `addr` completes (or answers with an alert) a TLS handshake: it speaks TLS. */
function speaksTls(addr: EngineAddress, timeoutMs: number): Promise<boolean> {
  if (addr.kind !== 'tcp') return Promise.resolve(false);
  return dialRaw(addr, { insecureSkipVerify: true }, timeoutMs, ['h2']).then(
    (s) => {
      s.destroy();
      return true;
    },
    (e: unknown) =>
      /_ALERT_/.test(
        String(
          (e as { cause?: { code?: string } }).cause?.code ?? (e as { code?: string }).code ?? '',
        ),
      ),
  );
}

function targetFor(a: EngineAddress): string {
  return a.kind === 'unix'
    ? `unix://${a.path}`
    : a.host.includes(':')
      ? `ipv6:[${a.host}]:${a.port}`
      : `${a.host}:${a.port}`;
}

/** Why a raw dial failed, in words a user can act on. */
export function describeDialError(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  switch (err?.code) {
    case 'ENOENT':
      return 'no socket there';
    case 'ECONNREFUSED':
      return 'connection refused (nothing listening)';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied (run as a user allowed to use this socket, e.g. in the docker group)';
    case 'ENOTSOCK':
      return 'path exists but is not a socket';
    case 'ETIMEDOUT':
      return 'timed out';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host name does not resolve';
    default:
      return BuildkitError.is(e) || e instanceof Error ? e.message : String(e);
  }
}

async function verifyReachable(
  addr: BuildkitAddress,
  opts: ConnectOptions,
  conn: BuildkitConnection,
  native = false,
): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const engine = addr.kind === 'docker' ? addr.engine : addr;
  const sock = await dialRaw(
    engine,
    opts.tls,
    timeoutMs,
    addr.kind === 'docker' ? ['http/1.1'] : ['h2'],
  );
  if (addr.kind === 'docker' && !native) {
    await httpUpgrade(sock, { path: '/grpc', timeoutMs });
    sock.destroy();
  } else if (addr.kind !== 'docker') {
    let answer: Awaited<ReturnType<typeof h2Answer>>;
    try {
      answer = await h2Answer(sock, timeoutMs);
    } catch (e) {
      throw tlsFailureOn(sock, e, false) ?? e;
    }
    if (answer === 'http1') {
      throw new BuildkitError(`${formatAddress(addr)} answers HTTP/1, not gRPC`, {
        code: 'E_CONNECT',
        hint: `if this is a Docker engine, use docker://${formatAddress(addr)}`,
      });
    }
    if (answer === 'closed' && opts.tls !== undefined) {
      // Some servers (not Go's, which sends an alert) refuse a client certificate by closing
      // the connection once the handshake is done.
      throw new BuildkitError(
        `TLS: the builder at ${formatAddress(addr)} closed the connection right after the TLS handshake, without a word of HTTP/2 (${opts.tls.origin ?? 'TLS settings'}), as a server does that refuses the client certificate${opts.tls.files?.cert ? ` ${opts.tls.files.cert}` : ''}`,
        {
          code: 'E_TLS',
          hint: opts.tls.cert
            ? 'use a client certificate signed by a CA the builder trusts'
            : 'give the client certificate and key with --tlscert and --tlskey (or --tlsdir DIR)',
        },
      );
    }
    if (answer === 'closed' && opts.tls === undefined && (await speaksTls(engine, timeoutMs))) {
      throw plainToTlsError(
        formatAddress(addr),
        false,
        'it closed the connection at the HTTP/2 preface and completes a TLS handshake',
      );
    }
  } else sock.destroy();
  try {
    await conn.info(timeoutMs);
  } catch (e) {
    // Engines without Info (BuildKit < 0.11) still answer: that is reachable enough.
    if (BuildkitError.is(e) && e.grpcCode === grpc.status.UNIMPLEMENTED) return;
    // Plain gRPC against a Docker engine socket: the engine answers HTTP/1.1 first, which
    // grpc-js reports as "Protocol error".
    if (addr.kind !== 'docker' && BuildkitError.is(e) && /Protocol error/.test(e.message)) {
      throw new BuildkitError(`${e.message.replace(/^Info failed: /, '')}`, {
        code: 'E_CONNECT',
        cause: e,
        hint: `if this is a Docker engine, use docker://${formatAddress(addr)}`,
      });
    }
    throw e;
  }
}

export async function connectTo(
  address: string | BuildkitAddress,
  opts: ConnectOptions = {},
): Promise<BuildkitConnection> {
  const addr = typeof address === 'string' ? parseAddress(address) : address;
  const mode = opts.engineGrpc ?? 'auto';
  if (addr.kind === 'docker' && mode !== 'upgrade') {
    // Native gRPC needs HTTP/2 on the socket itself: local sockets and plain tcp (an engine's
    // TLS listener negotiates HTTP/1.1).
    const plain = addr.engine.kind === 'unix' || opts.tls === undefined;
    let native = mode === 'native';
    if (!native && plain) {
      const api = await engineApiVersion(formatAddress(addr), undefined, opts.timeoutMs ?? 3000);
      native = api !== undefined && apiAtLeast(api, NATIVE_GRPC_API);
    }
    if (native) {
      try {
        // Verified even when the caller skips it: a failure here must fall back.
        return await connectVia(addr, { ...opts, verify: true }, true);
      } catch (e) {
        if (mode === 'native') throw e;
      }
    }
  }
  return connectVia(addr, opts, false);
}

async function connectVia(
  addr: BuildkitAddress,
  opts: ConnectOptions,
  native: boolean,
): Promise<BuildkitConnection> {
  const formatted = formatAddress(addr);
  let proxy: UpgradeProxy | undefined;
  let control: ControlClient;
  if (addr.kind === 'docker' && native) {
    control = new ControlClient(targetFor(addr.engine), grpc.credentials.createInsecure(), {
      ...CHANNEL_OPTIONS,
    });
  } else if (addr.kind === 'docker') {
    const engine = addr.engine;
    proxy = await startUpgradeProxy(async () =>
      httpUpgrade(await dialRaw(engine, opts.tls), { path: '/grpc' }),
    );
    control = new ControlClient(proxy.target, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
  } else if (addr.kind === 'tcp' && opts.tls !== undefined) {
    // TLS is dialled here, not by grpc-js: one place checks the certificates (the server name
    // override, Docker's unverified TLS, no SNI for an IP) and explains what fails.
    const tls = opts.tls;
    proxy = await startUpgradeProxy(() => dialRaw(addr, tls, 10_000, ['h2']));
    control = new ControlClient(proxy.target, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
  } else {
    control = new ControlClient(
      targetFor(addr),
      grpc.credentials.createInsecure(),
      CHANNEL_OPTIONS,
    );
  }

  const withProxyCause = (e: BuildkitError): BuildkitError => {
    // When the proxy's upgrade failed, grpc-js only says "UNAVAILABLE"; say why instead.
    const cause = proxy?.lastError;
    return cause && e.grpcCode === grpc.status.UNAVAILABLE
      ? new BuildkitError(`${e.message} (${cause.message})`, {
          code: e.code,
          grpcCode: e.grpcCode,
          cause,
        })
      : e;
  };

  const conn: BuildkitConnection = {
    address: formatted,
    tls: opts.tls,
    transport: addr.kind !== 'docker' ? 'grpc' : native ? 'engine-native' : 'engine-upgrade',
    control,
    async info(timeoutMs = 10_000) {
      const res = await unary<InfoRequest, InfoResponse>(
        'Info',
        control.info.bind(control),
        InfoRequest.fromPartial({}),
        timeoutMs,
      ).catch((e: unknown) => Promise.reject(withProxyCause(fromGrpc('Info', e))));
      const v = res.buildkitVersion;
      return { package: v?.package ?? '', version: v?.version ?? '', revision: v?.revision ?? '' };
    },
    async listWorkers(timeoutMs = 10_000) {
      const res = await unary<ListWorkersRequest, ListWorkersResponse>(
        'ListWorkers',
        control.listWorkers.bind(control),
        ListWorkersRequest.fromPartial({}),
        timeoutMs,
      ).catch((e: unknown) => Promise.reject(withProxyCause(fromGrpc('ListWorkers', e))));
      return res.record.map((w) => ({
        id: w.ID,
        labels: { ...w.Labels },
        platforms: w.platforms.map(formatPlatform),
      }));
    },
    async openSessionTransport(h) {
      if (addr.kind !== 'docker' || native || opts.sessionTransport === 'control') {
        return openControlSession(control, h);
      }
      const sock = await dialRaw(addr.engine, opts.tls);
      return cleartextStream(
        await httpUpgrade(sock, { path: '/session', headers: sessionHeaders(h) }),
      );
    },
    async close() {
      control.close();
      await proxy?.close();
    },
  };

  if (opts.verify ?? true) {
    try {
      await verifyReachable(addr, opts, conn, native);
    } catch (e) {
      await conn.close();
      // A TLS failure is said as such: the builder is there, and the connection is not safe.
      if (BuildkitError.is(e) && e.code === 'E_TLS') throw e;
      const hint = BuildkitError.is(e) ? e.hint : undefined;
      const why = describeDialError(e) + (hint ? ` (${hint})` : '');
      throw new BuildkitError(`cannot reach builder at ${formatted}: ${why}`, {
        code: 'E_CONNECT',
        cause: e,
        hint,
      });
    }
  }
  return conn;
}
