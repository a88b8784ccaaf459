/**
 * The sandbox's early start. A sandboxed `ktl build` spends most of its extra time waiting for
 * the jailed half of ktl (a second Node process) to start up. bin/run.cjs calls prestart() for
 * `ktl build` before it loads the build's code: this small bundle reads the command line
 * (build/argv.ts), validates it with the same code the build uses, plans the binds and starts
 * the jail, which waits for its build spec while the rest of ktl loads (src/build-main.ts, the
 * fast path that builds from this same reading). The build takes the jail only for the command
 * line it was started for (early-handoff.ts); otherwise it is discarded.
 *
 * Whatever goes wrong here is left to the build to find and report: prestart() never prints
 * and never throws. KTL_SANDBOX_PRESTART=0 turns the early start off.
 */
import { type BuildArgv, commandLineKey, readBuildArgv } from './build/argv';
import {
  type BuildFlags,
  ktlCacheDir,
  optionsFromFlags,
  sandboxSettingsFromFlags,
} from './build/from-flags';
import { type EarlyJail, leaveEarlyJail, takeEarlyJail } from './sandbox/early-handoff';
import { forwardedEnv } from './sandbox/forward-env';
import { type Jail, pickRuntime, startJail } from './sandbox/jail';
import { mark } from './timing';

export { warmSandboxStart as warmUp } from './sandbox/warm';
// The other side of the hand-over, from this bundle (its global slot is this realm's): for
// tests that load the bundle in a realm of their own.
export { commandLineKey, readBuildArgv, takeEarlyJail };

/**
 * Reads `ktl build`'s argv (after `build`) and, on Linux, starts the jail for it. Returns the
 * reading, for the fast path (src/build-main.ts) to build from; undefined leaves the command
 * line to oclif.
 */
export async function prestart(argv: readonly string[]): Promise<BuildArgv | undefined> {
  const read = readBuildArgv(argv);
  if (!read) return undefined;
  if (process.platform === 'linux' && process.env.KTL_SANDBOX_PRESTART !== '0')
    await startEarly(read);
  return read;
}

async function startEarly(read: BuildArgv): Promise<void> {
  let interrupted = false;
  try {
    const flags = read.flags as BuildFlags;
    const cwd = process.cwd();
    const env = process.env;
    const settings = sandboxSettingsFromFlags(flags, env);
    if (settings.mode === 'off') return;
    const options = optionsFromFlags(read.args.context, flags, {
      cwd,
      env,
      stderrIsTTY: process.stderr.isTTY === true,
    });
    if ('hostWarning' in pickRuntime(settings, env)) return;
    // One handler from before the runtime is spawned until `ktl build` takes the jail (never
    // none in between: a signal that arrives as the last listener goes is lost). Ending the
    // process at a Ctrl-C while bwrap sets the jail up would strand the jail's first process
    // (bwrap's own limit), and the CLI is still loading: the Ctrl-C is remembered, and the
    // build, once loaded, stops the jail and ends with 130 instead of building.
    let entry: EarlyJail | undefined;
    const onSignal = () => {
      interrupted = true;
      if (entry) entry.interrupted = true;
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const release = () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    };
    let jail: Jail;
    try {
      jail = await startJail({
        options,
        sandboxBinds: flags['sandbox-bind'] ?? [],
        cwd,
        settings,
        cacheDir: ktlCacheDir(env),
        forwardEnv: forwardedEnv(options, flags['build-arg'] ?? [], env),
      });
    } catch (e) {
      release();
      throw e;
    }
    // A build that ends without taking the jail discards it (src/build-main.ts); this is the
    // last resort.
    const onExit = () => {
      jail.stop();
      jail.cleanUp({ keepOutputs: false });
    };
    process.once('exit', onExit);
    entry = {
      key: commandLineKey(read.args, read.flags),
      jail,
      builder: flags.builder,
      builderTls: options.builderTls,
      dockerContext: options.dockerContext,
      interrupted,
      release: () => {
        release();
        process.off('exit', onExit);
      },
    };
    leaveEarlyJail(entry);
    mark('outer: jail started early');
  } catch {
    // The usual path reads the command line again and reports what is wrong with it (a
    // Ctrl-C meanwhile ends ktl, as it would have without the early start).
    if (interrupted) process.exit(130);
  }
}
