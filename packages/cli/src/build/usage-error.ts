/** A bad `ktl build` command line: names the flag and the value, says what to do. Exit 2. */
export class BuildUsageError extends Error {
  constructor(
    /** `--build-arg`, `-o`, `CONTEXT`, ... */
    readonly flag: string,
    readonly value: string | undefined,
    readonly reason: string,
    readonly hint?: string,
  ) {
    super(
      value === undefined ? `${flag}: ${reason}` : `${flag} ${JSON.stringify(value)}: ${reason}`,
    );
    this.name = 'BuildUsageError';
  }
}
