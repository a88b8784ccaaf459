/**
 * The one error type this package throws. Codes are stable so callers (the CLI) can map them
 * to exit codes and hints without parsing messages.
 */

const BRAND = Symbol.for('@ktl/buildkit-client/BuildkitError');

export type BuildkitErrorCode =
  | 'E_BAD_ADDRESS' // an address string we cannot parse
  | 'E_NO_BUILDER' // discovery found nothing that answers
  | 'E_CONNECT' // one explicit address did not answer
  | 'E_UPGRADE' // the Docker engine refused the HTTP/1.1 -> h2c upgrade
  | 'E_TLS' // the TLS connection to the builder failed its checks, or its TLS files are unusable
  | 'E_GRPC' // a Control call failed
  | 'E_SOLVE' // the build itself failed (step error, bad Dockerfile, ...)
  | 'E_SESSION' // the client session broke
  | 'E_EXPORT' // writing exported files failed or the daemon sent something unsafe
  | 'E_UNSUPPORTED' // the builder is too old for what was asked (nothing was sent)
  | 'E_BAD_OPTION' // a size, duration or filter we cannot parse (nothing was sent)
  | 'E_INTERNAL';

/** One address discovery tried, and why it did not work. */
export interface DiscoveryAttempt {
  /** Where the address came from: `BUILDKIT_HOST`, `DOCKER_HOST`, `default buildkitd socket`, ... */
  readonly source: string;
  readonly address: string;
  readonly reason: string;
}

export interface BuildkitErrorOptions {
  code: BuildkitErrorCode;
  hint?: string | undefined;
  cause?: unknown;
  /** gRPC status code, for E_GRPC / E_SOLVE. */
  grpcCode?: number | undefined;
  attempts?: readonly DiscoveryAttempt[] | undefined;
  details?: readonly BuildkitErrorDetail[] | undefined;
}

/**
 * A typed detail BuildKit attached to an error (`grpc-status-details-bin`). Type URLs ending
 * in `+json` carry JSON: e.g. `...errdefs.ExitMessage+json` ({code}), `...errdefs.Vertex+json`
 * (the failing step's digest), `...errdefs.Source+json` (Dockerfile location).
 */
export interface BuildkitErrorDetail {
  readonly typeUrl: string;
  readonly json: unknown;
}

export class BuildkitError extends Error {
  readonly code: BuildkitErrorCode;
  readonly hint: string | undefined;
  readonly grpcCode: number | undefined;
  readonly attempts: readonly DiscoveryAttempt[];
  readonly details: readonly BuildkitErrorDetail[];
  readonly [BRAND] = true;

  constructor(message: string, opts: BuildkitErrorOptions) {
    super(message, opts.cause === undefined ? {} : { cause: opts.cause });
    this.name = 'BuildkitError';
    this.code = opts.code;
    this.hint = opts.hint;
    this.grpcCode = opts.grpcCode;
    this.attempts = opts.attempts ?? [];
    this.details = opts.details ?? [];
  }

  /** Brand check that works across copies of this package (no instanceof). */
  static is(value: unknown): value is BuildkitError {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as Record<symbol, unknown>)[BRAND] === true
    );
  }

  /** Turns anything thrown into a BuildkitError (unexpected ones become E_INTERNAL). */
  static from(value: unknown): BuildkitError {
    if (BuildkitError.is(value)) return value;
    const message = value instanceof Error ? value.message : String(value);
    return new BuildkitError(`internal error: ${message}`, { code: 'E_INTERNAL', cause: value });
  }
}
