/**
 * A connection that only opens build sessions, for a process that serves a session and sends
 * no request of its own (the jailed half of a sandboxed `ktl build`: the Solve goes out from
 * the outer ktl). On a Docker engine the session is the engine's `POST /session` upgrade, which
 * needs no gRPC client, so @grpc/grpc-js is not even loaded; on buildkitd the session is
 * Control.Session, a gRPC stream, and the full connection is made (loaded on demand).
 */
import type { Duplex } from 'node:stream';
import { parseAddress } from './address';
import type { ConnectOptions } from './connect';
import { type SessionHandshake, sessionHeaders } from './session-headers';
import { dialRaw, httpUpgrade } from './upgrade';

export interface SessionConnection {
  openSessionTransport(h: SessionHandshake): Promise<Duplex>;
  close(): Promise<void>;
}

export async function connectForSession(
  address: string,
  opts: Pick<ConnectOptions, 'tls'> = {},
): Promise<SessionConnection> {
  const addr = parseAddress(address);
  if (addr.kind === 'docker') {
    return {
      async openSessionTransport(h) {
        const sock = await dialRaw(addr.engine, opts.tls);
        return httpUpgrade(sock, { path: '/session', headers: sessionHeaders(h) });
      },
      async close() {},
    };
  }
  const { connectTo } = await import('./connect');
  return connectTo(addr, { ...opts, verify: false });
}
