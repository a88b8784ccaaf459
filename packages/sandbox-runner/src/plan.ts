/**
 * What a run will execute, computed without running anything: the runtime, its exact argv
 * (host wrappers included), the nsjail config text, and the descriptors the runtime expects.
 * run() executes exactly this plan; plan() returns it for `--dry-run`.
 */
import { readlinkSync } from 'node:fs';
import { emitPolicy, type NsJailConfig } from '@ktl/nsjail-config';
import { bwrapArgs } from './bwrap-args';
import { type CgroupPlan, planCgroups } from './cgroups';
import { eff } from './eff';
import { type RuntimeName, SandboxError } from './errors';
import { hostWrappers } from './host-wrappers';
import {
  checkCommand,
  commandLine,
  type NormalizedOptions,
  normalizeOptions,
  type RunOptions,
} from './options';
import { loadPolicy } from './policy';
import { resolveRuntime, which } from './runtimes';

/** Stands for the private config file in a planned nsjail argv. */
export const CONFIG_PLACEHOLDER = '{config}';

export type FdPurpose = 'log' | 'status' | 'block' | 'data' | 'bind';

export interface SandboxPlan {
  readonly runtime: RuntimeName;
  /** The program and its arguments, wrappers first; nsjail's config path is `{config}`. */
  readonly argv: readonly string[];
  /** nsjail: the config file text, written mode 0600 into a 0700 temp dir. */
  readonly config?: string;
  /** Descriptors past stdio that the runtime is given, and what for. */
  readonly fds: readonly { readonly fd: number; readonly purpose: FdPurpose }[];
  /** Runner notes: fields allowed unenforced, skipped optional mounts, log overrides. */
  readonly notes: readonly string[];
  /** The command line as given. */
  readonly command: string;
}

export interface InternalPlan extends SandboxPlan {
  readonly policy: NsJailConfig;
  readonly options: NormalizedOptions;
  /** bwrap: bytes for each data descriptor, in order. */
  readonly data: readonly Uint8Array[];
  /** bwrap: the caller's descriptors for the `bind` fds, in order. */
  readonly bindFds: readonly number[];
  /** bwrap: the runner enforces time_limit (seconds; 0 = none). */
  readonly timeLimit: number;
  /** Cgroups the runner creates (bwrap) or whose parents it prepares (nsjail). */
  readonly cgroups: CgroupPlan | undefined;
  /** nsjail: the lowest log level the policy asked to see. */
  readonly logLevel: string;
}

const LEVELS = ['DEBUG', 'INFO', 'WARNING', 'ERROR', 'FATAL'];

function nsjailPlan(
  path: string,
  policy: NsJailConfig,
  file: string,
  args: readonly string[],
): Pick<InternalPlan, 'argv' | 'config' | 'fds' | 'notes' | 'logLevel'> {
  const notes: string[] = [];
  const { log_fd, log_file, ...rest } = policy;
  if (log_fd !== undefined || log_file !== undefined) {
    notes.push('log_fd/log_file replaced: the runner reads the nsjail log from descriptor 3');
  }
  const logLevel = policy.log_level ?? 'INFO';
  // The runner needs nsjail's INFO lines ("Executing", "exited with status") to tell a
  // runtime failure from the command's own; lines below the policy's level are not shown.
  const cfg: NsJailConfig = { ...rest, log_level: logLevel === 'DEBUG' ? 'DEBUG' : 'INFO' };
  // setpriv --pdeathsig: nsjail dies with the runner, and its jail with it (nsjail sets
  // PR_SET_PDEATHSIG on the jail), even when the runner is SIGKILLed.
  const setpriv = which('setpriv', { PATH: '/usr/bin:/bin' });
  const pre = setpriv ? [setpriv, '--pdeathsig', 'KILL', '--'] : [];
  if (!setpriv) notes.push('setpriv not found: nsjail will not die with the runner');
  return {
    argv: [...pre, path, '--log_fd', '3', '--config', CONFIG_PLACEHOLDER, '--', file, ...args],
    config: emitPolicy(cfg),
    fds: [{ fd: 3, purpose: 'log' }],
    notes,
    logLevel,
  };
}

/**
 * nsjail mounts by path: each pinned bind's source becomes its descriptor's current path (the
 * object the caller opened, wherever it is now; /proc/self/fd/N itself cannot be mounted from
 * nsjail's new mount namespace).
 */
function byCurrentPath(
  policy: NsJailConfig,
  pins: readonly { i: number; fd: number }[],
): { policy: NsJailConfig; notes: string[] } {
  const mount = [...(policy.mount ?? [])];
  const notes: string[] = [];
  for (const { i, fd } of pins) {
    const now = readlinkSync(`/proc/self/fd/${fd}`);
    if (!now.startsWith('/') || now.endsWith(' (deleted)')) {
      throw new SandboxError(`bind ${mount[i]?.dst}: the pinned source is gone (${now})`, {
        code: 'E_BAD_OPTION',
      });
    }
    mount[i] = { ...mount[i]!, src: now };
    notes.push(
      `bind ${mount[i]!.dst}: nsjail mounts it by path (${now}), not from descriptor ${fd}`,
    );
  }
  return { policy: { ...policy, mount }, notes };
}

export function buildPlan(
  fileArg: unknown,
  argsArg: unknown,
  raw: RunOptions,
  env: NodeJS.ProcessEnv = process.env,
): InternalPlan {
  const options = normalizeOptions(raw);
  const { file, args } = checkCommand(fileArg, argsArg);
  const { policy } = loadPolicy(raw, options);
  const runtime = resolveRuntime(options.runtime, env);
  const command = commandLine(file, args);
  const cgroups = planCgroups(policy);
  // The caller's binds are the last mounts of the effective policy (loadPolicy appends them).
  const base = (policy.mount?.length ?? 0) - options.binds.length;
  const pins = options.binds.flatMap((b, j) =>
    b.fd === undefined ? [] : [{ i: base + j, fd: b.fd }],
  );
  if (runtime.name === 'nsjail') {
    for (const f of ['daemon', 'exec_bin'] as const) {
      if (policy[f] !== undefined && policy[f] !== false) {
        throw new SandboxError(`policy error: ${f} cannot be used with the runner`, {
          code: 'E_POLICY',
          hint:
            f === 'daemon'
              ? 'the runner supervises the jail; remove daemon'
              : 'the runner runs the command given to run(); remove exec_bin',
        });
      }
    }
    const pinnedPolicy = pins.length > 0 ? byCurrentPath(policy, pins) : { policy, notes: [] };
    const ns = nsjailPlan(runtime.path, pinnedPolicy.policy, file, args);
    return {
      runtime: 'nsjail',
      command,
      policy: pinnedPolicy.policy,
      options,
      data: [],
      bindFds: [],
      timeLimit: 0,
      cgroups,
      ...ns,
      notes: [...pinnedPolicy.notes, ...ns.notes],
    };
  }
  const blockFd = cgroups ? 4 : undefined;
  const firstPinFd = cgroups ? 5 : 4;
  const firstDataFd = firstPinFd + pins.length;
  const b = bwrapArgs({
    policy,
    file,
    args,
    env,
    allowUnenforced: options.allowUnenforced,
    statusFd: 3,
    blockFd,
    firstDataFd,
    pinnedMounts: new Map(pins.map((p, k) => [p.i, firstPinFd + k])),
  });
  const fds: { fd: number; purpose: FdPurpose }[] = [{ fd: 3, purpose: 'status' }];
  if (blockFd !== undefined) fds.push({ fd: blockFd, purpose: 'block' });
  pins.forEach((_, k) => {
    fds.push({ fd: firstPinFd + k, purpose: 'bind' });
  });
  b.data.forEach((_, i) => {
    fds.push({ fd: firstDataFd + i, purpose: 'data' });
  });
  const mode = eff(policy, 'mode');
  return {
    runtime: 'bwrap',
    command,
    argv: [...hostWrappers(policy), runtime.path, ...b.args],
    fds,
    notes: b.notes,
    policy,
    options,
    data: b.data,
    bindFds: pins.map((p) => p.fd),
    // nsjail's EXECVE mode has no supervisor, so no time limit either (nsjail.cc setTimer).
    timeLimit: mode === 'EXECVE' ? 0 : eff(policy, 'time_limit'),
    cgroups,
    logLevel: LEVELS[1]!,
  };
}

/** The exact argv (and nsjail config text) run() would execute, without running anything. */
export function plan(
  file: string,
  args: readonly string[] = [],
  options: RunOptions = {},
): SandboxPlan {
  const p = buildPlan(file, args, options);
  return {
    runtime: p.runtime,
    argv: p.argv,
    ...(p.config !== undefined ? { config: p.config } : {}),
    fds: p.fds,
    notes: p.notes,
    command: p.command,
  };
}
