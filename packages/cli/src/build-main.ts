/**
 * `ktl build`'s fast path: bin/run.cjs runs the build from this bundle (dist/build.cjs) when the
 * early reader (src/build/argv.ts) took the command line, without loading oclif and the other
 * commands (dist/ktl.cjs): ~100 ms less start-up for every build, sandboxed or not. The reader
 * only answers where it reads argv exactly as oclif would (test/build-argv.test.ts holds it to
 * that); everything else (--help, a flag form it does not know, a bad flag) goes to oclif.
 */

import type { BuildArgv } from './build/argv';
import { buildCommand, discardUntakenJail, findEarlyJailBuilder } from './build/command';
import { ExitCode } from './build/exit-codes';
import type { BuildFlags } from './build/from-flags';
import { exitWhenFlushed } from './exit';
import { mark } from './timing';

export async function run(read: BuildArgv): Promise<void> {
  mark('outer: build bundle loaded');
  findEarlyJailBuilder();
  try {
    await buildCommand(read.args, read.flags as BuildFlags);
  } catch (e) {
    // What oclif does with an exception no one expected: the message (the stack with
    // DEBUG set), exit 1 (ExitCode.INTERNAL).
    const err = e instanceof Error ? e : new Error(String(e));
    process.stderr.write(
      `ERROR: ${process.env.DEBUG ? (err.stack ?? err.message) : err.message}\n`,
    );
    process.exitCode = ExitCode.INTERNAL;
  } finally {
    await discardUntakenJail();
  }
  // Done: what is left are handles winding down (the builder connection's, a stopped jail's
  // runtime), ~20-30 ms of them, that nothing needs.
  await exitWhenFlushed();
}

/** Build step only (dist/boot.cjs --write-code-cache). */
export { warmOuterBuild as warmUp } from './sandbox/warm-outer';
