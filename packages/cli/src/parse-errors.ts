/**
 * oclif's own parse errors (unknown flag, missing argument, value not among the options) as
 * ktl's usage errors: `ERROR: ...`, a hint naming the command's --help, exit status 2.
 */
export function reportParseError(
  err: Error & { oclif?: { exit?: number }; parse?: unknown },
  command: string,
): boolean {
  // oclif's parser errors (CLIParseError and its subclasses) carry the parse they failed in.
  // Recognised by that, not by class name: the CLI bundle is minified, which renames classes.
  if (
    err.oclif === undefined ||
    err.oclif.exit === 0 ||
    typeof err.parse !== 'object' ||
    err.parse === null
  )
    return false;
  // oclif appends its own pointer to --help; the hint below says it with the command's name.
  // And, to a missing argument, a note on flags that take several values, about an argument
  // order that is not the problem (ktl's repeatable flags take one value each).
  const message = err.message
    .replace(/\nSee more help with --help$/, '')
    .replace(/\n+Note: [^\n]* allow multiple values\.[\s\S]*$/, '');
  process.stderr.write(`ERROR: ${message}\nhint: see ktl ${command} --help\n`);
  process.exitCode = 2;
  return true;
}
