/**
 * Ends the process once what it wrote to stdout and stderr is out (writes to a pipe are
 * asynchronous), without waiting for other handles to wind down: connections being closed, a
 * stopped jail's runtime. For the two ktl processes whose work is done when their output is:
 * the build (src/build-main.ts) and the jailed half (src/inner.ts).
 */
export async function exitWhenFlushed(code?: number): Promise<never> {
  await Promise.all(
    [process.stdout, process.stderr].map(
      (s) => new Promise<void>((r) => (s.writableLength === 0 ? r() : s.write('', () => r()))),
    ),
  );
  // process.exit(undefined) would set the exit code to undefined, i.e. 0: without an
  // argument, it keeps process.exitCode.
  if (code === undefined) process.exit();
  process.exit(code);
}
