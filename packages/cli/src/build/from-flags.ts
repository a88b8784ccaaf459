/**
 * From `ktl build`'s parsed flags to what the build and the sandbox need. One function for
 * both readings of the command line (oclif's, and src/build/argv.ts's for the early start), so
 * the same flags always make the same options, settings and binds.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Interfaces } from '@oclif/core';
import type Build from '../commands/build';
import { hostPathOf, parseSandboxBinds } from '../sandbox/binds';
import {
  resolveSandboxSettings,
  type SandboxSettings,
  SandboxSettingsError,
} from '../sandbox/settings';
import { builderTlsFromFlags } from './builder-tls';
import { type BuildOptions, parseBuildOptions } from './options';
import { BuildUsageError } from './usage-error';

/**
 * `ktl build`'s flags as oclif hands them over, from `Build.flags` itself (type only: nothing
 * of oclif or the command is loaded here). Partial: the early reader (argv.ts) leaves out what
 * the command line does not give, as oclif does for flags without a default.
 */
export type BuildFlags = Partial<Interfaces.InferredFlags<(typeof Build)['flags']>>;

export interface BuildProcess {
  cwd: string;
  env: NodeJS.ProcessEnv;
  stderrIsTTY: boolean;
}

/**
 * A sandboxed build's --sandbox-bind GUEST paths name, on the command line, what is bound
 * there: existence checks look at the HOST side. Malformed values are left to the bind plan,
 * which refuses them with the reason.
 */
function guestToHost(values: readonly string[] | undefined, cwd: string) {
  if (!values || values.length === 0) return undefined;
  let guests: ReturnType<typeof parseSandboxBinds>;
  try {
    guests = parseSandboxBinds(values, cwd);
  } catch {
    return undefined;
  }
  return (p: string) => hostPathOf(p, guests).host;
}

/** The validated options (BuildUsageError or SandboxSettingsError on a bad command line). */
export function optionsFromFlags(
  context: string,
  flags: BuildFlags,
  proc: BuildProcess,
): BuildOptions {
  const options = parseBuildOptions(
    {
      context,
      file: flags.file,
      tag: flags.tag,
      buildArg: flags['build-arg'],
      target: flags.target,
      platform: flags.platform,
      label: flags.label,
      noCache: flags['no-cache'],
      keepSetid: flags['keep-setid'],
      pull: flags.pull,
      buildContext: flags['build-context'],
      secret: flags.secret,
      ssh: flags.ssh,
      // --hermetic: RUN steps get no network either (the gateway insists on it).
      network: flags.hermetic ? 'none' : flags.network,
      addHost: flags['add-host'],
      allow: flags.allow,
      output: flags.output,
      cacheFrom: flags['cache-from'],
      cacheTo: flags['cache-to'],
      load: flags.load,
      push: flags.push,
      progress: flags.progress,
      quiet: flags.quiet,
      builder: flags.builder,
      iidfile: flags.iidfile,
      metadataFile: flags['metadata-file'],
      attest: flags.attest,
      provenance: flags.provenance,
      sbom: flags.sbom,
    },
    { ...proc, hostPath: guestToHost(flags['sandbox-bind'], proc.cwd) },
  );
  const builderTls = builderTlsFromFlags(flags, proc.cwd);
  if (flags.hermetic && (flags.network === 'host' || options.allow.includes('network.host'))) {
    throw new SandboxSettingsError(
      '--hermetic and --network host contradict each other',
      'drop one of them',
    );
  }
  if (flags.context !== undefined && flags.builder !== undefined)
    throw new BuildUsageError(
      '--context',
      flags.context,
      'cannot be given with --builder: both name the builder',
      'give one of them',
    );
  return {
    ...options,
    ...(builderTls ? { builderTls } : {}),
    ...(flags.context !== undefined ? { dockerContext: flags.context } : {}),
  };
}

export function sandboxSettingsFromFlags(
  flags: BuildFlags,
  env: NodeJS.ProcessEnv,
): SandboxSettings {
  return resolveSandboxSettings(
    {
      sandbox: flags.sandbox,
      sandboxConfig: flags['sandbox-config'],
      sandboxRuntime: flags['sandbox-runtime'],
      sandboxLogs: flags['sandbox-logs'],
      hermetic: flags.hermetic,
      network: flags.network,
    },
    env,
  );
}

/** ktl's cache directory: KTL_CACHE_DIR, else $XDG_CACHE_HOME/ktl, else ~/.cache/ktl. */
export function ktlCacheDir(env: NodeJS.ProcessEnv): string {
  return env.KTL_CACHE_DIR ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'ktl');
}
