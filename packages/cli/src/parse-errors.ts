/**
 * oclif's own parse errors (unknown flag, missing argument, value not among the options) as
 * ktl's usage errors: `ERROR: ...`, a hint naming the command's --help, exit status 2.
 */
export function reportParseError(
  err: Error & { oclif?: { exit?: number } },
  command: string,
): boolean {
  if (
    err.oclif === undefined ||
    err.oclif.exit === 0 ||
    !/Flag|Arg|Parse|Option/i.test(err.constructor.name)
  )
    return false;
  process.stderr.write(`ERROR: ${err.message}\nhint: see ktl ${command} --help\n`);
  process.exitCode = 2;
  return true;
}
