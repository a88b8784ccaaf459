/** Exit statuses of `ktl builder ...` (stable). */
export const BuilderExit = {
  OK: 0,
  USAGE: 2,
  NO_ENGINE: 3,
  /** The engine did not start, or (rootless) this host cannot run it: the message says which. */
  START_FAILED: 4,
  NOT_ROOT: 5,
} as const;

export class BuilderError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly hint: string,
  ) {
    super(message);
    this.name = 'BuilderError';
  }
}
