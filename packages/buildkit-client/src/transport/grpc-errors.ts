/**
 * Turning grpc-js failures into BuildkitErrors. BuildKit attaches typed details to its errors
 * in the `grpc-status-details-bin` trailer (a google.rpc.Status). Several of them carry JSON,
 * not protobuf, payloads: their type URLs end in `+json` (stack traces, the failing vertex, the
 * Dockerfile source range, the exit code of a failed RUN).
 */
import { status as GrpcStatus, Metadata, type ServiceError } from '@grpc/grpc-js';
import { BuildkitError, type BuildkitErrorCode } from '../errors';
import { Status } from '../gen/google/rpc/status';

export interface ErrorDetail {
  readonly typeUrl: string;
  /** Parsed payload for `+json` details; undefined for protobuf ones. */
  readonly json: unknown;
}

export function isServiceError(e: unknown): e is ServiceError {
  return (
    e instanceof Error && typeof (e as Partial<ServiceError>).code === 'number' && 'details' in e
  );
}

export function errorDetails(e: ServiceError): ErrorDetail[] {
  const md = e.metadata instanceof Metadata ? e.metadata : undefined;
  const raw = md?.get('grpc-status-details-bin')[0];
  if (!(raw instanceof Uint8Array)) return [];
  try {
    return Status.decode(raw).details.map((d) => {
      let json: unknown;
      if (d.typeUrl.endsWith('+json')) {
        try {
          json = JSON.parse(Buffer.from(d.value).toString('utf8'));
        } catch {
          json = undefined;
        }
      }
      return { typeUrl: d.typeUrl, json };
    });
  } catch {
    return [];
  }
}

export function grpcCodeName(code: number): string {
  return (GrpcStatus as unknown as Record<number, string>)[code] ?? String(code);
}

/** Wraps a failed Control call; `what` names the call (`Info`, `Solve`, ...). */
export function fromGrpc(
  what: string,
  e: unknown,
  code: BuildkitErrorCode = 'E_GRPC',
): BuildkitError {
  if (BuildkitError.is(e)) return e;
  if (!isServiceError(e)) return new BuildkitError(`${what}: ${String(e)}`, { code, cause: e });
  const hint =
    e.code === GrpcStatus.UNIMPLEMENTED
      ? 'this builder is too old for this call; use BuildKit v0.11+ or Docker 23+'
      : undefined;
  // grpc-js appends a timestamp and a resolver note to connection failures; drop them.
  const details = e.details.replace(/ \(\d{4}-\d\d-\d\dT[^)]*\)\.( Resolution note:.*)?$/s, '');
  return new BuildkitError(`${what} failed: ${details || grpcCodeName(e.code)}`, {
    code,
    grpcCode: e.code,
    hint,
    cause: e,
  });
}

/** Promise form of a grpc-js unary call. */
export function unary<Req, Res>(
  what: string,
  call: (
    req: Req,
    md: Metadata,
    opts: { deadline?: Date },
    cb: (err: ServiceError | null, res: Res) => void,
  ) => unknown,
  req: Req,
  timeoutMs?: number,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    const opts = timeoutMs === undefined ? {} : { deadline: new Date(Date.now() + timeoutMs) };
    call(req, new Metadata(), opts, (err, res) =>
      err ? reject(fromGrpc(what, err)) : resolve(res),
    );
  });
}
