/**
 * `ktl build` once its command line is read: validate the options, take the jail the early
 * start made for this very command line (or start the sandbox now), run the build on the host
 * or inside the sandbox, map every failure to its exit code. Independent of oclif: the CLI's
 * Build command calls it after oclif's parse, and bin/run.cjs's fast path (src/build-main.ts)
 * after the early reader's (src/build/argv.ts), so a `ktl build` does not load oclif at all.
 */
import {
  type BuildkitConnection,
  BuildkitError,
  connect,
  formatAddress,
  parseAddress,
} from '@ktl/buildkit-client';
import { managedCandidates, START_HINT } from '../builder/managed';
import { BindPlanError } from '../sandbox/binds';
import { takeEarlyJail, waitingEarlyJail } from '../sandbox/early-handoff';
import { forwardedEnv } from '../sandbox/forward-env';
import { SANDBOX_FAILED_EXIT } from '../sandbox/jail-paths';
import { SandboxSettingsError } from '../sandbox/settings';
import { mark } from '../timing';
import { commandLineKey } from './argv';
import { ExitCode } from './exit-codes';
import {
  type BuildFlags,
  ktlCacheDir,
  optionsFromFlags,
  sandboxSettingsFromFlags,
} from './from-flags';
import type { BuildOptions } from './options';
import { runBuild } from './run';
import { BuildUsageError } from './usage-error';

/** Closes a connection that may never have been made (its failure was reported elsewhere). */
const closeConnection = (found: Promise<BuildkitConnection>) =>
  found.then((c) => c.close()).catch(() => {});

/** Runs `ktl build` for a parsed command line; the outcome is in process.exitCode. */
export async function buildCommand(args: { context: string }, flags: BuildFlags): Promise<void> {
  const stderr = (s: string) => {
    process.stderr.write(s);
  };
  const usage = (e: { message: string; hint?: string | undefined }) => {
    stderr(`ERROR: ${e.message}\n${e.hint ? `hint: ${e.hint}\n` : ''}`);
    process.exitCode = ExitCode.USAGE;
  };
  // Validated here, before any sandbox or builder, so a typo fails fast with exit 2.
  let options: BuildOptions;
  try {
    options = optionsFromFlags(args.context, flags, {
      cwd: process.cwd(),
      env: process.env,
      stderrIsTTY: process.stderr.isTTY === true,
    });
  } catch (e) {
    const left = takeEarlyJail(undefined);
    await left.discarded;
    if (left.interrupted) {
      process.exitCode = ExitCode.INTERRUPTED;
      return;
    }
    if (e instanceof BuildUsageError || e instanceof SandboxSettingsError) return usage(e);
    throw e;
  }

  const controller = new AbortController();
  const onSignal = () => {
    // A second Ctrl-C does not wait for the builder to acknowledge the cancel.
    if (controller.signal.aborted) process.exit(ExitCode.INTERRUPTED);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // The jail src/early.ts started for this very command line, if any (same tick as the
  // handlers above: a Ctrl-C from here on is this command's).
  const early = takeEarlyJail(commandLineKey(args, flags));
  if (early.interrupted) {
    // Ctrl-C while ktl was loading: the early jail is being stopped; nothing is built.
    await early.discarded;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.exitCode = ExitCode.INTERRUPTED;
    return;
  }
  let jailHandedOver = false;
  // The connection that finds the builder: opened by the early start or by the sandboxed
  // path below, closed at the end either way.
  let finding: Promise<BuildkitConnection> | undefined = early.found;
  const onHost = async () => {
    mark('host: build start');
    const out = await runBuild(options, {
      stdout: (s) => process.stdout.write(s),
      stderr,
      stdin: process.stdin,
      env: process.env,
      terminalSize: () => ({ columns: process.stderr.columns, rows: process.stderr.rows }),
      signal: controller.signal,
    });
    mark('host: build done');
    return out.exitCode;
  };
  try {
    await early.discarded;
    let settings = sandboxSettingsFromFlags(flags, process.env);
    // An early jail was started for these very settings, after the same runtime check.
    if (settings.mode !== 'off' && !early.jail) {
      const { pickRuntime } = await import('../sandbox/jail');
      const picked = pickRuntime(settings, process.env);
      if ('hostWarning' in picked)
        settings = { ...settings, mode: 'off', warning: picked.hostWarning };
    }
    if (settings.mode === 'off') {
      if (settings.warning) stderr(`${settings.warning}\n`);
      process.exitCode = await onHost();
      return;
    }
    mark('outer: options parsed');
    // The builder is found while the sandbox starts (the jail's start-up is the longest
    // step); the connection made to find it sends the Solve.
    finding ??= connect(flags.builder, {
      preferred: managedCandidates(process.env),
      tlsFlags: options.builderTls,
      context: options.dockerContext,
    });
    const found = finding;
    found.catch(() => {}); // awaited by runBuildInSandbox; a failure surfaces there
    const upstream = found.then((conn) => parseAddress(conn.address));
    const [{ runBuildInSandbox }, { askedLine, outerAuthAnswerer }] = await Promise.all([
      import('../sandbox/reexec'),
      import('../sandbox/handover'),
    ]);
    jailHandedOver = true;
    process.exitCode = await runBuildInSandbox({
      jail: early.jail,
      options,
      sandboxBinds: flags['sandbox-bind'] ?? [],
      cwd: process.cwd(),
      settings,
      upstream,
      // The gateway dials the builder out here, with the TLS that found it.
      upstreamTls: found.then((conn) => conn.tls),
      solve: async (sessionId, signal, outerDirs) =>
        (
          await runBuild(
            { ...options, builder: formatAddress(await upstream) },
            {
              stdout: (t) => process.stdout.write(t),
              stderr,
              env: process.env,
              terminalSize: () => ({
                columns: process.stderr.columns,
                rows: process.stderr.rows,
              }),
              signal,
              externalSession: { id: sessionId },
              outerDirs,
              connect: () => found,
            },
          )
        ).exitCode,
      cacheDir: ktlCacheDir(process.env),
      forwardEnv: forwardedEnv(options, flags['build-arg'] ?? [], process.env),
      // Registry credentials stay out here: the daemon's Auth calls are relayed to this.
      auth: outerAuthAnswerer(process.env, {
        warn: (l) => stderr(`${l}\n`),
        ...(settings.logs
          ? { onAsked: (host, given, error) => stderr(`${askedLine(host, given, error)}\n`) }
          : {}),
      }),
      stderr,
      signal: controller.signal,
    });
  } catch (e) {
    if (e instanceof SandboxSettingsError || e instanceof BindPlanError) return usage(e);
    if (e instanceof BuildkitError) {
      // No builder answered (found while the sandbox was starting; it has been stopped).
      stderr(`ERROR: ${e.message}\n`);
      if (e.code === 'E_NO_BUILDER') stderr(`hint: ${START_HINT}\n`);
      else if (e.hint) stderr(`hint: ${e.hint}\n`);
      process.exitCode =
        e.code === 'E_BAD_ADDRESS' || e.code === 'E_BAD_OPTION' || e.code === 'E_UNSUPPORTED'
          ? ExitCode.USAGE
          : e.code === 'E_TLS'
            ? ExitCode.TLS
            : ExitCode.NO_BUILDER;
      return;
    }
    // Matched by name, as below: the sandbox modules are loaded lazily.
    if (e instanceof Error && e.name === 'SandboxError') {
      const hint = (e as { hint?: string }).hint;
      stderr(`ERROR: ${e.message}\n${hint ? `hint: ${hint}\n` : ''}`);
      process.exitCode = SANDBOX_FAILED_EXIT;
      return;
    }
    if (e instanceof Error && (e.name === 'PolicyError' || e.name === 'PolicyLoadError')) {
      stderr(`ERROR: sandbox policy: ${e.message}\n`);
      process.exitCode = SANDBOX_FAILED_EXIT;
      return;
    }
    throw e;
  } finally {
    if (!jailHandedOver) await early.jail?.discard();
    // runBuild closes it after the Solve; this covers a sandbox that failed before that.
    if (finding) await closeConnection(finding);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/**
 * The early jail's builder, looked for as soon as the build's code is loaded: the search runs
 * while the command line is parsed (oclif) and the jail finishes starting.
 */
export function findEarlyJailBuilder(): void {
  const early = waitingEarlyJail();
  if (!early || early.found) return;
  early.found = connect(early.builder, {
    preferred: managedCandidates(process.env),
    tlsFlags: early.builderTls,
    context: early.dockerContext,
  });
  early.found.catch(() => {}); // reported by the build that takes it
}

/**
 * After the command: an early jail no build took (the command ended before it could) is
 * stopped and its private directory removed; a Ctrl-C that came meanwhile ends ktl with 130.
 */
export async function discardUntakenJail(): Promise<void> {
  const left = takeEarlyJail(undefined);
  await left.discarded;
  if (left.interrupted) process.exitCode = ExitCode.INTERRUPTED;
}
