/**
 * How a `ktl build` decides whether and how to sandbox itself: flags first, then the
 * environment, then the defaults. Every refusal says what and what to do.
 */

export type RuntimeChoice = 'auto' | 'nsjail' | 'bwrap';

export interface SandboxFlags {
  sandbox?: boolean | undefined;
  sandboxConfig?: string | undefined;
  sandboxRuntime?: string | undefined;
  sandboxLogs?: boolean | undefined;
  hermetic?: boolean | undefined;
  network?: string | undefined;
}

export interface SandboxSettings {
  /** 'off' only with KTL_SANDBOX_DISABLE=1 (or on a platform without sandboxing). */
  mode: 'required' | 'default' | 'off';
  /** A policy file, or undefined for the embedded default (hermetic.cfg under --hermetic). */
  policyFile: string | undefined;
  runtime: RuntimeChoice;
  logs: boolean;
  hermetic: boolean;
  /** Printed loudly when the sandbox is off. */
  warning?: string;
}

export class SandboxSettingsError extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
    this.name = 'SandboxSettingsError';
  }
}

const DISABLE_WARNING =
  'WARNING: KTL_SANDBOX_DISABLE=1: the build client runs on the host, unsandboxed. A hostile ' +
  'Dockerfile or build context can then read any file your user can (e.g. with ' +
  '--build-context or RUN --mount=type=bind) and reach your Docker socket. Use this only to ' +
  'debug ktl itself, never on repositories you do not trust.';

function truthy(v: string | undefined): boolean {
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
}

export function resolveSandboxSettings(
  flags: SandboxFlags,
  env: NodeJS.ProcessEnv,
  platform = process.platform,
): SandboxSettings {
  const hermetic = flags.hermetic ?? false;
  if (hermetic && flags.network === 'host') {
    throw new SandboxSettingsError(
      '--hermetic and --network host contradict each other',
      'drop one of them',
    );
  }
  const runtime = flags.sandboxRuntime ?? env.KTL_SANDBOX_RUNTIME ?? 'auto';
  if (runtime !== 'auto' && runtime !== 'nsjail' && runtime !== 'bwrap') {
    throw new SandboxSettingsError(
      `--sandbox-runtime ${runtime}: not one of auto, nsjail, bwrap`,
      'use --sandbox-runtime auto',
    );
  }
  const policyFile = flags.sandboxConfig ?? (env.KTL_SANDBOX_CONFIG || undefined);
  const base = {
    policyFile,
    runtime: runtime as RuntimeChoice,
    logs: flags.sandboxLogs ?? false,
    hermetic,
  };
  if (truthy(env.KTL_SANDBOX_DISABLE)) {
    // An explicit demand for isolation wins over the debug switch, loudly.
    if (flags.sandbox) {
      throw new SandboxSettingsError(
        'KTL_SANDBOX_DISABLE=1 is ignored: --sandbox requires the sandbox',
        'unset KTL_SANDBOX_DISABLE or drop --sandbox',
      );
    }
    if (hermetic) {
      throw new SandboxSettingsError(
        'KTL_SANDBOX_DISABLE=1 is ignored: --hermetic requires the sandbox',
        'unset KTL_SANDBOX_DISABLE or drop --hermetic',
      );
    }
    return { ...base, mode: 'off', warning: DISABLE_WARNING };
  }
  if (platform !== 'linux') {
    if (flags.sandbox || hermetic) {
      throw new SandboxSettingsError(
        `the sandbox needs Linux (this is ${platform})`,
        'run ktl build on Linux, or drop --sandbox/--hermetic',
      );
    }
    return {
      ...base,
      mode: 'off',
      warning: `WARNING: no sandbox on ${platform}: the build client runs on the host.`,
    };
  }
  return { ...base, mode: flags.sandbox || hermetic ? 'required' : 'default' };
}
