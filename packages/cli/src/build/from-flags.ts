/**
 * From `ktl build`'s parsed flags to what the build and the sandbox need. One function for
 * both readings of the command line (oclif's, and src/build/argv.ts's for the early start), so
 * the same flags always make the same options, settings and binds.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import {
  resolveSandboxSettings,
  type SandboxSettings,
  SandboxSettingsError,
} from '../sandbox/settings';
import { type BuildOptions, parseBuildOptions } from './options';

/** `ktl build`'s flags as oclif hands them over (`Build.flags`). */
export interface BuildFlags {
  readonly file?: string | undefined;
  readonly tag?: string[] | undefined;
  readonly 'build-arg'?: string[] | undefined;
  readonly target?: string | undefined;
  readonly platform?: string[] | undefined;
  readonly attest?: string[] | undefined;
  readonly provenance?: string | undefined;
  readonly sbom?: string | undefined;
  readonly label?: string[] | undefined;
  readonly 'no-cache'?: boolean | undefined;
  readonly pull?: boolean | undefined;
  readonly 'build-context'?: string[] | undefined;
  readonly secret?: string[] | undefined;
  readonly ssh?: string[] | undefined;
  readonly network?: string | undefined;
  readonly allow?: string[] | undefined;
  readonly 'add-host'?: string[] | undefined;
  readonly output?: string[] | undefined;
  readonly 'cache-from'?: string[] | undefined;
  readonly 'cache-to'?: string[] | undefined;
  readonly load?: boolean | undefined;
  readonly push?: boolean | undefined;
  readonly progress?: string | undefined;
  readonly quiet?: boolean | undefined;
  readonly builder?: string | undefined;
  readonly iidfile?: string | undefined;
  readonly 'metadata-file'?: string | undefined;
  readonly sandbox?: boolean | undefined;
  readonly 'sandbox-config'?: string | undefined;
  readonly 'sandbox-runtime'?: string | undefined;
  readonly 'sandbox-logs'?: boolean | undefined;
  readonly 'sandbox-bind'?: string[] | undefined;
  readonly hermetic?: boolean | undefined;
}

export interface BuildProcess {
  cwd: string;
  env: NodeJS.ProcessEnv;
  stderrIsTTY: boolean;
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
    proc,
  );
  if (flags.hermetic && (flags.network === 'host' || options.allow.includes('network.host'))) {
    throw new SandboxSettingsError(
      '--hermetic and --network host contradict each other',
      'drop one of them',
    );
  }
  return options;
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
