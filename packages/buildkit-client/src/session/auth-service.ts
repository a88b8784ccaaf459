/**
 * The session's Auth service (moby.filesync.v1.Auth): how the daemon asks the client for
 * registry credentials. Each call is one request message and one answer, so the service is an
 * AuthAnswerer — request bytes in, response bytes out, a GrpcStatusError for a status — served
 * as gRPC handlers. The answerer is either the real one over a CredentialStore
 * (credentialAnswerer) or one that relays every call to another process (a sandboxed build
 * client asks the ktl outside it: gateway/auth-endpoint.ts), so the credentials and the
 * credential helpers stay where that answerer runs.
 */
import type { CredentialStore } from '../auth/docker-config';
import { CredentialsRequest, CredentialsResponse } from '../gen/moby/filesync/v1/auth';
import { GRPC_UNIMPLEMENTED, GrpcStatusError, type Handler } from './grpc-server';

/** The methods of moby.filesync.v1.Auth, as the daemon calls them. */
export const AUTH_METHODS = [
  'Credentials',
  'FetchToken',
  'GetTokenAuthority',
  'VerifyTokenAuthority',
] as const;
export type AuthMethod = (typeof AUTH_METHODS)[number];

export const AUTH_SERVICE = '/moby.filesync.v1.Auth/';

export function isAuthMethod(m: string): m is AuthMethod {
  return (AUTH_METHODS as readonly string[]).includes(m);
}

/** Answers one Auth call: the request's protobuf bytes in, the response's out. */
export interface AuthAnswerer {
  /** Throws GrpcStatusError for a gRPC status (UNIMPLEMENTED is part of the protocol). */
  answer(method: AuthMethod, request: Uint8Array, signal?: AbortSignal): Promise<Uint8Array>;
}

export function isAuthAnswerer(x: CredentialStore | AuthAnswerer): x is AuthAnswerer {
  return typeof (x as AuthAnswerer).answer === 'function';
}

export interface CredentialAnswererOptions {
  /**
   * Called for each Credentials call once answered: the host asked about, and whether
   * credentials were given (false: none known, or the lookup failed with `error`).
   */
  readonly onCredentials?:
    | ((host: string, given: boolean, error?: Error | undefined) => void)
    | undefined;
}

/**
 * Credentials only. The daemon asks GetTokenAuthority first for bearer-token registries; an
 * Unimplemented answer means "no token authority here", after which it asks Credentials and
 * fetches the token itself, so FetchToken is never needed (buildkit util/resolver).
 */
export function credentialAnswerer(
  store: CredentialStore,
  opts: CredentialAnswererOptions = {},
): AuthAnswerer {
  return {
    async answer(method, request) {
      if (method !== 'Credentials')
        throw new GrpcStatusError(GRPC_UNIMPLEMENTED, `${method} is not implemented by ktl`);
      const host = CredentialsRequest.decode(request).Host;
      let c: Awaited<ReturnType<CredentialStore['get']>>;
      try {
        c = await store.get(host);
      } catch (e) {
        opts.onCredentials?.(host, false, e as Error);
        throw e;
      }
      opts.onCredentials?.(host, c !== undefined);
      return CredentialsResponse.encode({
        Username: c?.username ?? '',
        Secret: c?.secret ?? '',
      }).finish();
    },
  };
}

/** The Auth service's gRPC handlers, every method answered by `answerer`. */
export function authHandlers(answerer: AuthAnswerer): Map<string, Handler> {
  const handlers = new Map<string, Handler>();
  for (const m of AUTH_METHODS) {
    handlers.set(`${AUTH_SERVICE}${m}`, async (call) => {
      let req: Uint8Array = new Uint8Array();
      // Drained before answering: one request message.
      for await (const raw of call.messages()) req = raw;
      await call.send(await answerer.answer(m, req, call.signal));
    });
  }
  return handlers;
}
