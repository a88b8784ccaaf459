/**
 * run(): spawns the planned runtime and supervises it. The handle is a promise of the result
 * that also exposes pid, stdio streams and kill(). Killing follows nsjail's rules on both
 * runtimes: SIGINT/SIGTERM kill the jail with SIGKILL (or, with forward_signals, reach the
 * command), and the jail dies as a whole because the command is pid 1 of its pid namespace
 * and has PR_SET_PDEATHSIG on its runtime.
 */
import { type ChildProcess, type StdioOptions, spawn } from 'node:child_process';
import {
  closeSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { attachCgroups, prepareCgroups } from './cgroups';
import { eff } from './eff';
import { type RunOutcome, type RuntimeName, SandboxError } from './errors';
import type { RunOptions } from './options';
import { signalName } from './options';
import { buildPlan, CONFIG_PLACEHOLDER, type InternalPlan } from './plan';
import { type Observed, outcome, type StopReason } from './result';
import { BwrapStatus, RuntimeLog, Tail } from './runtime-log';

export type RunResult = RunOutcome;

export interface SandboxProcess extends Promise<RunResult> {
  /** pid of the runtime process (nsjail or the first wrapper before bwrap). */
  readonly pid: number | undefined;
  readonly runtime: RuntimeName | undefined;
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  /** Sends a signal to the jail with nsjail's semantics; returns false when already ended. */
  kill(signal?: NodeJS.Signals | number): boolean;
}

/** nsjail ignores these for the jail (nsjail.cc sigHandler): they never reach the command. */
const NSJAIL_IGNORED = new Set([
  'SIGUSR1',
  'SIGQUIT',
  'SIGALRM',
  'SIGCHLD',
  'SIGPIPE',
  'SIGTTIN',
  'SIGTTOU',
]);

function handle(
  promise: Promise<RunResult>,
  child: ChildProcess | undefined,
  runtime: RuntimeName | undefined,
  streams: { stdin: Writable | null; stdout: Readable | null; stderr: Readable | null },
  kill: (s?: NodeJS.Signals | number) => boolean,
): SandboxProcess {
  return Object.assign(promise, {
    pid: child?.pid,
    runtime,
    ...streams,
    kill,
  }) as SandboxProcess;
}

function failed(e: unknown): SandboxProcess {
  return handle(
    Promise.reject(SandboxError.from(e)),
    undefined,
    undefined,
    {
      stdin: null,
      stdout: null,
      stderr: null,
    },
    () => false,
  );
}

/**
 * Runs `file args` in the jail described by options.policy / options.policyFile, or by the
 * embedded default policy (defaultPolicy()) when neither is given.
 */
export function run(
  file: string,
  args: readonly string[] = [],
  options: RunOptions = {},
): SandboxProcess {
  let plan: InternalPlan;
  try {
    plan = buildPlan(file, args, options);
  } catch (e) {
    return failed(e);
  }
  if (plan.options.cancelSignal?.aborted) {
    return failed(
      new SandboxError('canceled', {
        code: 'E_CANCELED',
        cause: plan.options.cancelSignal.reason,
        outcome: { command: plan.command, isCanceled: true, runtime: plan.runtime },
      }),
    );
  }
  return launch(plan);
}

/**
 * bwrap reads each data descriptor (/etc/passwd, /etc/group, the seccomp program) to its end
 * before it starts the command. Through a pipe, that end comes when this process's event loop
 * next runs, so a caller busy right after run() (loading modules, say) would hold the jail's
 * start-up. Each blob goes into a file instead (in a 0700 directory, unlinked at once) whose
 * read-only descriptor the runtime inherits: it can read to the end at its own pace.
 */
function dataDescriptors(plan: InternalPlan): number[] {
  if (plan.data.length === 0) return [];
  const dir = mkdtempSync(join(tmpdir(), 'ktl-bwrap-data-'));
  const fds: number[] = [];
  try {
    plan.data.forEach((bytes, i) => {
      const file = join(dir, String(i));
      writeFileSync(file, bytes, { mode: 0o400, flag: 'wx' });
      fds.push(openSync(file, 'r'));
      unlinkSync(file);
    });
    return fds;
  } catch (e) {
    for (const fd of fds) closeSync(fd);
    throw e;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** O_CLOEXEC in /proc/self/fdinfo's octal `flags:`. */
const O_CLOEXEC = 0o2000000;

/**
 * Descriptors this process holds without close-on-exec (left open by whoever started it: a
 * shell's `exec 20<file`, a CI agent's leaked pipe) at numbers the child's stdio does not set:
 * every child would inherit them, and bubblewrap passes what it inherits into the jail. Node's
 * own descriptors are all close-on-exec. Linux only (/proc); elsewhere there is no jail.
 */
function strayDescriptors(from: number): number[] {
  let names: string[];
  try {
    names = readdirSync('/proc/self/fd');
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const name of names) {
    const fd = Number(name);
    if (fd < 3 || fd < from) continue;
    try {
      const flags = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
      if (flags && (Number.parseInt(flags[1]!, 8) & O_CLOEXEC) === 0) out.push(fd);
    } catch {
      // closed meanwhile (the directory listing's own descriptor)
    }
  }
  return out.sort((a, b) => a - b);
}

/**
 * The stdio list extended so that each stray descriptor is replaced in the child by /dev/null
 * (dup2 over it): what crosses into the jail is what the plan passes, and nothing the caller
 * merely inherited. (libuv leaves a descriptor past stdio alone when told to ignore it, so
 * the number is taken over rather than closed; nsjail closes such descriptors itself.)
 */
function coverStrays(
  stdio: StdioOptions,
  strays: readonly number[],
  devNull: number,
): StdioOptions {
  const list = [...(stdio as unknown[])];
  for (let i = list.length; i <= strays[strays.length - 1]!; i++) list.push('ignore');
  for (const fd of strays) list[fd] = devNull;
  return list as StdioOptions;
}

function stdioFor(plan: InternalPlan, data: readonly number[]): StdioOptions {
  const [si, so, se] = plan.options.stdio;
  const p = plan.policy;
  const map = (m: string) => (m === 'stream' ? 'pipe' : m) as 'pipe' | 'inherit' | 'ignore';
  const out: ('pipe' | 'inherit' | 'ignore')[] = [map(si), map(so), map(se)];
  if (plan.runtime === 'bwrap') {
    // nsjail closes stdio itself for silent/stderr_to_null; under bwrap the runner does it.
    // stderr is kept as a pipe whenever possible: bwrap's own error message arrives there.
    const silent = eff(p, 'silent');
    if (silent) out[0] = out[1] = 'ignore';
    if (silent || eff(p, 'stderr_to_null') || se === 'ignore') out[2] = 'pipe';
  }
  let d = 0;
  let b = 0;
  const extra = plan.fds.map((f) =>
    f.purpose === 'data'
      ? data[d++]!
      : f.purpose === 'bind'
        ? plan.bindFds[b++]!
        : ('pipe' as const),
  );
  return [...out, ...extra];
}

function launch(plan: InternalPlan): SandboxProcess {
  const o = plan.options;
  const log = new RuntimeLog(o.logs, o.onLog, plan.logLevel[0]);
  for (const n of plan.notes) log.note(n);
  let tmp: string | undefined;
  let argv = [...plan.argv];
  let child: ChildProcess;
  try {
    if (plan.config !== undefined) {
      // mkdtemp makes the directory 0700; the policy file itself is 0600 and never reused.
      tmp = mkdtempSync(join(tmpdir(), 'ktl-nsjail-cfg-'));
      const cfg = join(tmp, 'policy.cfg');
      writeFileSync(cfg, plan.config, { mode: 0o600, flag: 'wx' });
      argv = argv.map((a) => (a === CONFIG_PLACEHOLDER ? cfg : a));
    }
    if (plan.cgroups) prepareCgroups(plan.cgroups);
    const data = dataDescriptors(plan);
    let devNull: number | undefined;
    try {
      let stdio = stdioFor(plan, data);
      const strays = strayDescriptors(stdio.length);
      if (strays.length > 0) {
        devNull = openSync('/dev/null', 'r');
        stdio = coverStrays(stdio, strays, devNull);
      }
      child = spawn(argv[0]!, argv.slice(1), { stdio, env: process.env });
    } finally {
      for (const fd of data) closeSync(fd);
      if (devNull !== undefined) closeSync(devNull);
    }
  } catch (e) {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    return failed(e);
  }
  const started = performance.now();
  const [si, so, se] = o.stdio;
  const silent = plan.runtime === 'bwrap' && eff(plan.policy, 'silent');
  const stderrHidden =
    plan.runtime === 'bwrap' && (silent || eff(plan.policy, 'stderr_to_null') || se === 'ignore');
  const forward = eff(plan.policy, 'forward_signals');
  const obs: Observed = {
    reason: undefined,
    runtimeExit: undefined,
    runtimeSignal: undefined,
    spawnError: undefined,
    attachError: undefined,
    bwrap: new BwrapStatus(),
    leaves: [],
    durationMs: 0,
  };
  let exited = false;
  /** A kill asked for before bwrap reported the jail's pid (see killJail). */
  let killPending = false;
  const timers: NodeJS.Timeout[] = [];
  const waits: Promise<void>[] = [];
  const ignore = () => {};
  const ended = (s: Readable) =>
    new Promise<void>((resolve) => {
      s.once('end', resolve);
      s.once('close', resolve);
      s.once('error', () => resolve());
    });

  const collect = (s: Readable | null | undefined, mode: string, tail?: Tail) => {
    if (!s) return undefined;
    s.on('error', ignore);
    if (mode !== 'pipe' && !tail) return undefined;
    const chunks: Buffer[] = [];
    s.on('data', (b: Buffer) => (tail ? tail.push(b) : chunks.push(b)));
    waits.push(ended(s));
    return chunks;
  };
  const stdoutChunks = silent ? undefined : collect(child.stdout, so);
  const stderrTail = new Tail();
  const stderrChunks = stderrHidden
    ? collect(child.stderr, 'pipe', stderrTail)
    : collect(child.stderr, se);
  if (se === 'pipe' && !stderrHidden) child.stderr?.on('data', (b: Buffer) => stderrTail.push(b));
  child.stdin?.on('error', ignore);
  if (o.input !== undefined) child.stdin?.end(o.input);

  const ctl = child.stdio[3] as Readable | undefined;
  if (ctl) {
    ctl.on('error', ignore);
    waits.push(ended(ctl));
    if (plan.runtime === 'nsjail') {
      ctl.on('data', (b: Buffer) => log.write(b));
      ctl.on('end', () => log.end());
    } else {
      const onPid = (pid: number) => {
        if (killPending) {
          // Stopped while bwrap was still setting the jail up: now it has a pid to kill.
          killPending = false;
          killJail();
          return;
        }
        if (!plan.cgroups) return;
        const block = child.stdio[4] as Writable;
        try {
          obs.leaves = attachCgroups(plan.cgroups, pid);
          for (const l of obs.leaves) log.note(`cgroup ${l}: limits set, jail moved in`);
          block.end(Buffer.from([1]));
        } catch (e) {
          obs.attachError = SandboxError.from(e);
          killJail();
        }
      };
      ctl.on('data', (b: Buffer) => obs.bwrap.write(b, onPid));
      ctl.on('end', () => obs.bwrap.end(onPid));
    }
  }
  for (const { fd, purpose } of plan.fds) {
    if (purpose !== 'data' && purpose !== 'bind')
      (child.stdio[fd] as Writable | null | undefined)?.on('error', ignore);
  }

  /** SIGKILL for the whole jail: its pid 1 first (race-free while bwrap has not reaped it). */
  function killJail(): void {
    const pid = obs.bwrap.childPid;
    if (plan.runtime === 'bwrap' && pid === undefined && ctl && !exited) {
      // bwrap may already have cloned the jail's first process without having said which pid
      // it is (its status line is on the way). Killing bwrap now would strand that child:
      // --die-with-parent only takes effect later in its set-up, so it would run on, jailed
      // but unsupervised. Kill it as soon as bwrap names it; bwrap itself if it never does.
      if (!killPending) {
        killPending = true;
        timers.push(
          setTimeout(() => {
            if (killPending && !exited) child.kill('SIGKILL');
          }, 2000),
        );
      }
      return;
    }
    if (plan.runtime === 'bwrap' && pid !== undefined) {
      if (!eff(plan.policy, 'clone_newpid')) {
        // No pid namespace to tear down: take the command's session (--new-session makes it
        // a process group leader) so its children go too. Nothing reaches a process that left
        // the group (nsjail, for its part, kills only its direct child here).
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          // skip_setsid: the command leads no group of its own
        }
      }
      try {
        process.kill(pid, 'SIGKILL');
        return;
      } catch {
        // already gone; kill bwrap itself below
      }
    }
    child.kill('SIGKILL');
  }

  function send(sig: NodeJS.Signals): void {
    if (plan.runtime === 'nsjail' || sig === 'SIGKILL') {
      if (sig === 'SIGKILL') killJail();
      else child.kill(sig);
      return;
    }
    if (NSJAIL_IGNORED.has(sig)) return;
    const pid = obs.bwrap.childPid;
    if (forward && (sig === 'SIGINT' || sig === 'SIGTERM') && pid !== undefined) {
      try {
        process.kill(pid, sig);
      } catch {
        // the command is already gone
      }
      return;
    }
    killJail();
  }

  function kill(signal: NodeJS.Signals | number = o.killSignal): boolean {
    if (exited || child.pid === undefined) return false;
    const sig = signalName('signal', signal);
    send(sig);
    if (sig !== 'SIGKILL' && sig === o.killSignal && o.forceKillAfterDelay !== false) {
      timers.push(
        setTimeout(() => {
          if (exited) return;
          log.note(`still running ${o.forceKillAfterDelay} ms after ${sig}: SIGKILL`);
          killJail();
          child.kill('SIGKILL');
        }, o.forceKillAfterDelay),
      );
    }
    return true;
  }

  const stop = (reason: StopReason) => {
    if (exited || obs.reason) return;
    obs.reason = reason;
    if (reason === 'time_limit') {
      // nsjail sends SIGCONT + SIGKILL on its time limit, whatever forward_signals says.
      log.note(`run time >= time limit (${plan.timeLimit} s): killing the jail`);
      killJail();
    } else kill(o.killSignal);
  };
  if (o.timeout > 0) timers.push(setTimeout(() => stop('timeout'), o.timeout));
  if (plan.timeLimit > 0) timers.push(setTimeout(() => stop('time_limit'), plan.timeLimit * 1000));
  const onAbort = () => stop('cancel');
  o.cancelSignal?.addEventListener('abort', onAbort, { once: true });

  const promise = new Promise<RunResult>((resolve, reject) => {
    let settled = false;
    const finish = async () => {
      if (settled) return;
      settled = true;
      exited = true;
      obs.durationMs = Math.round(performance.now() - started);
      // Output a leaked descriptor keeps open must not hang the caller forever.
      const cap = new Promise<void>((r) => timers.push(setTimeout(r, 5000)));
      await Promise.race([Promise.all(waits), cap]);
      for (const t of timers) clearTimeout(t);
      o.cancelSignal?.removeEventListener('abort', onAbort);
      if (tmp) rmSync(tmp, { recursive: true, force: true });
      try {
        const r = await outcome(plan, obs, log, {
          // silent/stderr_to_null: the command's output went nowhere, as under nsjail.
          stdout:
            silent && so === 'pipe' ? '' : stdoutChunks && Buffer.concat(stdoutChunks).toString(),
          stderr: stderrHidden
            ? se === 'pipe'
              ? ''
              : undefined
            : stderrChunks && Buffer.concat(stderrChunks).toString(),
          stderrTail: se === 'inherit' || se === 'stream' ? undefined : stderrTail.lines(),
        });
        if (r.failed && o.reject) reject(r);
        else resolve(r);
      } catch (e) {
        reject(SandboxError.from(e));
      }
    };
    child.once('error', (e) => {
      if (child.pid === undefined) {
        obs.spawnError = e;
        void finish();
      }
    });
    child.once('exit', (code, signal) => {
      obs.runtimeExit = code ?? undefined;
      obs.runtimeSignal = signal ?? undefined;
      void finish();
    });
  });
  return handle(
    promise,
    child,
    plan.runtime,
    {
      stdin: si === 'pipe' || si === 'stream' ? (child.stdin ?? null) : null,
      stdout: so === 'pipe' || so === 'stream' ? (child.stdout ?? null) : null,
      stderr: (se === 'pipe' || se === 'stream') && !stderrHidden ? (child.stderr ?? null) : null,
    },
    kill,
  );
}
