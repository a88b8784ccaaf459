/**
 * `ktl build` exit statuses. Scripts and the sandbox wrapper branch on these, so they are
 * stable: add new ones, never renumber.
 */
export const ExitCode = {
  /** The build succeeded and every output was written. */
  OK: 0,
  /** A bug in ktl (an unexpected exception); the message says what broke. */
  INTERNAL: 1,
  /** Bad command line: unknown flag, bad value, contradicting flags, missing context/file. */
  USAGE: 2,
  /** No BuildKit builder could be reached (discovery or --builder). */
  NO_BUILDER: 3,
  /** The build ran and failed: a step exited non-zero, a Dockerfile error, a pull/push error. */
  BUILD_FAILED: 4,
  /** The build succeeded but ktl could not write an output on this machine (iidfile, ...). */
  OUTPUT_FAILED: 5,
  /** The connection to the builder broke during the build (session or gRPC failure). */
  BUILDER_ERROR: 6,
  /**
   * The builder is there but its TLS failed a check: the CA did not sign its certificate, its
   * name does not match, it wants a client certificate ktl does not have (or refuses the one
   * given), plain text against a TLS port or TLS against a plain one, or TLS files that cannot
   * be used. Nothing was sent, and no other builder was tried instead.
   */
  TLS: 7,
  /** Interrupted (SIGINT/SIGTERM); the build was cancelled on the builder. */
  INTERRUPTED: 130,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export const EXIT_CODE_HELP =
  'Exit status: 0 success, 2 bad usage, 3 no builder reachable, 4 build failed, ' +
  '5 writing an output failed, 6 builder connection broke, 7 the TLS to the builder failed, ' +
  '130 interrupted, 1 internal error.';
