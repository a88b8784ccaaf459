/**
 * The sandbox's early start. A sandboxed `ktl build` spends most of its extra time waiting for
 * the jailed half of ktl (a second Node process) to start up. bin/run.js calls prestart() for
 * `ktl build` before it loads the CLI bundle: this small bundle reads the command line
 * (build/argv.ts), validates it with the same code the CLI uses, plans the binds and starts the
 * jail, which waits for its build spec while the CLI loads and parses the command line again
 * with oclif. `ktl build` then takes the jail only if oclif's reading is exactly the same
 * (early-handoff.ts); otherwise the jail is discarded and one is started the usual way.
 *
 * Whatever goes wrong here is left to the usual path to find and report: prestart() never
 * prints and never throws. KTL_SANDBOX_PRESTART=0 turns it off.
 */
import { commandLineKey, readBuildArgv } from './build/argv';
import {
  type BuildFlags,
  ktlCacheDir,
  optionsFromFlags,
  sandboxSettingsFromFlags,
} from './build/from-flags';
import { leaveEarlyJail, takeEarlyJail } from './sandbox/early-handoff';
import { forwardedEnv } from './sandbox/forward-env';
import { pickRuntime, startJail } from './sandbox/jail';
import { mark } from './timing';

export { warmSandboxStart as warmUp } from './sandbox/warm';

export async function prestart(argv: readonly string[]): Promise<void> {
  if (process.platform !== 'linux' || process.env.KTL_SANDBOX_PRESTART === '0') return;
  const read = readBuildArgv(argv);
  if (!read) return;
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
    const jail = await startJail({
      options,
      sandboxBinds: flags['sandbox-bind'] ?? [],
      cwd,
      settings,
      cacheDir: ktlCacheDir(env),
      forwardEnv: forwardedEnv(options, flags['build-arg'] ?? [], env),
    });
    // Until `ktl build` takes the jail: Ctrl-C stops it and leaves nothing behind, and so does
    // a CLI that ends without taking it.
    const onSignal = () => {
      takeEarlyJail(undefined).discarded?.finally(() => process.exit(130));
    };
    const onExit = () => {
      jail.stop();
      jail.cleanUp({ keepOutputs: false });
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    process.once('exit', onExit);
    leaveEarlyJail({
      key: commandLineKey(read.args, read.flags),
      jail,
      builder: flags.builder,
      release: () => {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        process.off('exit', onExit);
      },
    });
    mark('outer: jail started early');
  } catch {
    // The usual path reads the command line again and reports what is wrong with it.
  }
}
