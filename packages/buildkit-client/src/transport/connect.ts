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
import { dialRaw, httpUpgrade, type TlsOptions } from './upgrade';

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

function credentialsFor(a: EngineAddress, tls: TlsOptions | undefined): grpc.ChannelCredentials {
  if (a.kind === 'tcp' && tls !== undefined) {
    const buf = (v: string | Buffer | undefined) =>
      v === undefined ? null : Buffer.isBuffer(v) ? v : Buffer.from(v);
    return grpc.credentials.createSsl(buf(tls.ca), buf(tls.key), buf(tls.cert));
  }
  return grpc.credentials.createInsecure();
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
  }
  sock.destroy();
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
  } else {
    const channelOpts: grpc.ChannelOptions = { ...CHANNEL_OPTIONS };
    if (addr.kind === 'tcp' && opts.tls?.serverName !== undefined) {
      channelOpts['grpc.ssl_target_name_override'] = opts.tls.serverName;
    }
    control = new ControlClient(targetFor(addr), credentialsFor(addr, opts.tls), channelOpts);
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
      return httpUpgrade(sock, { path: '/session', headers: sessionHeaders(h) });
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
