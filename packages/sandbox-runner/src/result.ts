/**
 * One result shape for success and failure: what the runtime reported about the command,
 * plus why the runner stopped it. The error message starts with the reason.
 */
import { oomKilled, removeCgroups } from './cgroups';
import { type RunOutcome, SandboxError, type SandboxErrorCode } from './errors';
import type { InternalPlan } from './plan';
import {
  type BwrapStatus,
  type CommandStatus,
  fromExitCode,
  nsjailStatus,
  type RuntimeLog,
} from './runtime-log';

export type StopReason = 'timeout' | 'time_limit' | 'cancel';

export interface Observed {
  reason: StopReason | undefined;
  runtimeExit: number | undefined;
  runtimeSignal: NodeJS.Signals | undefined;
  spawnError: Error | undefined;
  attachError: SandboxError | undefined;
  bwrap: BwrapStatus;
  leaves: string[];
  durationMs: number;
}

export interface Output {
  stdout: string | undefined;
  stderr: string | undefined;
  /** Last stderr lines when the runner saw them: bwrap's own message on failure. */
  stderrTail: string[] | undefined;
}

function bwrapStatus(obs: Observed, tail: string[] | undefined, log: RuntimeLog): CommandStatus {
  const b = obs.bwrap;
  if (b.exitCode !== undefined) {
    const f = fromExitCode(b.exitCode);
    return {
      started: true,
      exitCode: f.exitCode,
      signal: f.signal,
      timeLimitHit: false,
      errors: [],
    };
  }
  if ((obs.reason !== undefined || obs.runtimeSignal !== undefined) && b.childPid !== undefined) {
    // The jail was killed (pid 1 with SIGKILL, or bwrap and then pid 1 by PDEATHSIG).
    return { started: true, exitCode: 137, signal: 'SIGKILL', timeLimitHit: false, errors: [] };
  }
  const errors = (tail ?? []).slice(-10);
  for (const e of errors) log.note(e);
  if (errors.length === 0) {
    const how =
      obs.runtimeSignal !== undefined
        ? `was killed by ${obs.runtimeSignal}`
        : `exited ${obs.runtimeExit}`;
    errors.push(
      tail === undefined
        ? `bwrap ${how} (its message went to the inherited or streamed stderr)`
        : `bwrap ${how} without a message`,
    );
  }
  return { started: false, exitCode: undefined, signal: undefined, timeLimitHit: false, errors };
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

export async function outcome(
  plan: InternalPlan,
  obs: Observed,
  log: RuntimeLog,
  out: Output,
): Promise<RunOutcome | SandboxError> {
  const oom = oomKilled(obs.leaves);
  await removeCgroups(obs.leaves);
  if (oom) log.note('cgroup memory limit reached: the kernel OOM-killed the jail');
  let status: CommandStatus;
  if (obs.spawnError) {
    status = {
      started: false,
      exitCode: undefined,
      signal: undefined,
      timeLimitHit: false,
      errors: [`cannot execute ${plan.argv[0]}: ${obs.spawnError.message}`],
    };
  } else if (plan.runtime === 'nsjail') {
    status = nsjailStatus(log.all);
    if (status.started && status.exitCode === undefined) {
      // nsjail itself was killed: its jail died of PR_SET_PDEATHSIG (SIGKILL) with it.
      status =
        obs.runtimeSignal !== undefined
          ? { ...status, exitCode: 137, signal: 'SIGKILL' }
          : { ...status, exitCode: obs.runtimeExit };
    }
    if (!status.started && status.errors.length === 0 && obs.reason === undefined) {
      const how =
        obs.runtimeSignal !== undefined
          ? `was killed by ${obs.runtimeSignal}`
          : `exited ${obs.runtimeExit}`;
      status = { ...status, errors: [`nsjail ${how} before running the command`] };
    }
  } else status = bwrapStatus(obs, out.stderrTail, log);

  const timeLimitHit = obs.reason === 'time_limit' || status.timeLimitHit;
  const base: RunOutcome = {
    command: plan.command,
    exitCode: status.exitCode,
    signal: status.signal,
    timedOut: obs.reason === 'timeout' || timeLimitHit,
    isCanceled: obs.reason === 'cancel',
    failed: false,
    durationMs: obs.durationMs,
    runtime: plan.runtime,
    ...(out.stdout !== undefined ? { stdout: out.stdout } : {}),
    ...(out.stderr !== undefined ? { stderr: out.stderr } : {}),
    runtimeLog: log.shown,
  };
  let code: SandboxErrorCode | undefined;
  let why = '';
  let hint: string | undefined;
  if (obs.attachError) {
    code = obs.attachError.code;
    why = `runtime failed before the command started: ${obs.attachError.shortMessage}`;
    hint = obs.attachError.hint;
  } else if (obs.reason === 'cancel') {
    code = 'E_CANCELED';
    why = 'canceled';
  } else if (obs.reason === 'timeout') {
    code = 'E_TIMEOUT';
    why = `timed out after ${seconds(plan.options.timeout)}`;
  } else if (timeLimitHit) {
    code = 'E_TIMEOUT';
    why = `timed out after ${plan.policy.time_limit ?? 600} s (policy time_limit)`;
  } else if (!status.started) {
    code = 'E_RUNTIME_FAILED';
    why = `runtime failed before the command started: ${status.errors.join('; ')}`;
  } else if (status.signal !== undefined) {
    code = 'E_SIGNAL';
    why = `killed by ${status.signal}${oom ? ' (cgroup memory limit)' : ''}`;
  } else if (status.exitCode !== 0) {
    code = 'E_EXIT';
    why = `exited ${status.exitCode}`;
  }
  if (code === undefined) return base;
  return new SandboxError(why, {
    code,
    hint,
    outcome: base,
    cause: obs.spawnError ?? obs.attachError,
    details: plan.options.logs === 'on-failure' ? log.shown : undefined,
  });
}
