/**
 * The client side of a build session: a gRPC server (we serve, the daemon calls) reached over
 * the connection's session transport. The daemon calls back into it for the build context
 * (FileSync), exports (FileSend), secrets, and polls Health every few seconds; a session that
 * does not answer SERVING is dropped.
 */
import type { CredentialStore } from '../auth/docker-config';
import { BuildkitError } from '../errors';
import {
  HealthCheckResponse,
  HealthCheckResponse_ServingStatus,
} from '../gen/grpc/health/v1/health';
import { GetSecretRequest, GetSecretResponse } from '../gen/moby/buildkit/secrets/v1/secrets';
import { nodeCrypto } from '../lazy-node';
import type { BuildkitConnection } from '../transport/connect';
import {
  type AuthAnswerer,
  authHandlers,
  credentialAnswerer,
  isAuthAnswerer,
} from './auth-service';
import { type ContentStoreSpec, contentHandlers, isExpectedContentAnswer } from './content-service';
import { type ExportTarget, fileSendReceiver } from './filesend';
import { diffCopySender, type SyncProgress } from './filesync';
import {
  GRPC_NOT_FOUND,
  GRPC_UNIMPLEMENTED,
  GrpcStatusError,
  type Handler,
  serveGrpc,
} from './grpc-server';
import { SSH_CHECK_AGENT, sshForwardHandlers } from './sshforward';

export interface SessionOptions {
  /** Session id (default: a new random one); given when another process sends the Solve. */
  readonly id?: string | undefined;
  /** Shown by the daemon in logs; buildx uses the context directory's name. */
  readonly name?: string | undefined;
  /** Key the daemon uses to share cached context transfers between sessions. */
  readonly sharedKey?: string | undefined;
  /** Local directories offered through FileSync, by name (`context`, `dockerfile`, ...). */
  readonly dirs?: Readonly<Record<string, string>> | undefined;
  /** Export targets by exporter index (SolveRequest.Exporters order). */
  readonly exports?: readonly (ExportTarget | undefined)[] | undefined;
  /** Build secrets by id (`RUN --mount=type=secret,id=...`). */
  readonly secrets?: Readonly<Record<string, Uint8Array>> | undefined;
  /**
   * SSH agents by id (`RUN --mount=type=ssh,id=...`, default id `default`): the path of each
   * agent's unix socket. The build may list keys and sign, nothing else.
   */
  readonly ssh?: Readonly<Record<string, string>> | undefined;
  /**
   * The Auth service: registry credentials from a store (e.g. `loadDockerConfig()`), or every
   * call answered elsewhere (a sandboxed client relays them to the ktl outside).
   */
  readonly auth?: CredentialStore | AuthAnswerer | undefined;
  /**
   * OCI layout directories served as containerd's content service, by store id (`local:<dir>`
   * for `local` caches): writable for cache exports, read-only for imports.
   */
  readonly contentStores?: Readonly<Record<string, ContentStoreSpec>> | undefined;
  readonly onSync?: ((p: SyncProgress) => void) | undefined;
  /** How the context walker looks entries up (WalkOptions.lookup; default `proc`). */
  readonly contextLookup?: 'proc' | 'cwd' | undefined;
  /** Handler failures: they also go back to the daemon, which fails the build with them. */
  readonly onError?: ((method: string, err: unknown) => void) | undefined;
}

/** A random id like BuildKit's: 25 base-36 characters. */
export function newSessionId(): string {
  const b = nodeCrypto().randomBytes(17);
  b[0]! |= 0x80; // fixed top bit: the base-36 text always has the same length
  return BigInt(`0x${b.toString('hex')}`)
    .toString(36)
    .slice(1, 26);
}

const HEALTH_CHECK = '/grpc.health.v1.Health/Check';

export function buildHandlers(opts: SessionOptions): Map<string, Handler> {
  const serving = HealthCheckResponse.encode({
    status: HealthCheckResponse_ServingStatus.SERVING,
  }).finish();
  const handlers = new Map<string, Handler>();
  handlers.set(HEALTH_CHECK, async (call) => {
    for await (const _ of call.messages()) {
      // one request
    }
    await call.send(serving);
  });
  const dirs = new Map(Object.entries(opts.dirs ?? {}));
  handlers.set(
    '/moby.filesync.v1.FileSync/DiffCopy',
    diffCopySender(dirs, { onDone: opts.onSync, lookup: opts.contextLookup }),
  );
  if (opts.exports && opts.exports.length > 0) {
    handlers.set('/moby.filesync.v1.FileSend/DiffCopy', fileSendReceiver(opts.exports));
  }
  if (opts.secrets) {
    const secrets = opts.secrets;
    handlers.set('/moby.buildkit.secrets.v1.Secrets/GetSecret', async (call) => {
      let id = '';
      for await (const raw of call.messages()) id = GetSecretRequest.decode(raw).ID;
      const data = Object.hasOwn(secrets, id) ? secrets[id] : undefined;
      if (data === undefined) throw new GrpcStatusError(GRPC_NOT_FOUND, `secret ${id} not found`);
      await call.send(GetSecretResponse.encode({ data }).finish());
    });
  }
  if (opts.ssh && Object.keys(opts.ssh).length > 0) {
    for (const [m, h] of sshForwardHandlers(new Map(Object.entries(opts.ssh)))) handlers.set(m, h);
  }
  if (opts.auth) {
    const answerer = isAuthAnswerer(opts.auth) ? opts.auth : credentialAnswerer(opts.auth);
    for (const [m, h] of authHandlers(answerer)) handlers.set(m, h);
  }
  if (opts.contentStores && Object.keys(opts.contentStores).length > 0) {
    const stores = new Map(Object.entries(opts.contentStores));
    for (const [m, h] of contentHandlers(stores)) handlers.set(m, h);
  }
  return handlers;
}

export class BuildSession {
  private constructor(
    readonly id: string,
    /** Resolves when the daemon's side of the session is gone. */
    readonly done: Promise<void>,
    private readonly stop: () => void,
  ) {}

  static async start(
    conn: Pick<BuildkitConnection, 'openSessionTransport'>,
    opts: SessionOptions = {},
  ): Promise<BuildSession> {
    const id = opts.id ?? newSessionId();
    const handlers = buildHandlers(opts);
    let transport: Awaited<ReturnType<BuildkitConnection['openSessionTransport']>>;
    try {
      transport = await conn.openSessionTransport({
        id,
        name: opts.name ?? 'ktl',
        sharedKey: opts.sharedKey ?? id,
        methods: [...handlers.keys()],
      });
    } catch (e) {
      throw new BuildkitError(`cannot open build session: ${(e as Error).message}`, {
        code: 'E_SESSION',
        cause: e,
      });
    }
    const served = serveGrpc(transport, handlers, {
      // An Unimplemented answer is part of the protocol (see credentialAnswerer), not a
      // session failure.
      onError: (method, err) => {
        if (err instanceof GrpcStatusError && err.code === GRPC_UNIMPLEMENTED) return;
        // Asked for an agent we do not have: the daemon says so itself (with our message), and
        // `RUN --mount=type=ssh,required=false` carries on without it.
        if (method === SSH_CHECK_AGENT && err instanceof GrpcStatusError) return;
        // "Already there" and "not there" are how the cache exporter and importer probe a
        // content store; the daemon acts on them itself.
        if (isExpectedContentAnswer(method, err)) return;
        opts.onError?.(method, err);
      },
    });
    return new BuildSession(id, served.done, () => served.close());
  }

  async close(): Promise<void> {
    this.stop();
    await this.done;
  }
}
