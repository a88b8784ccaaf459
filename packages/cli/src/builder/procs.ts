/**
 * The processes of a managed engine, found through /proc. A rootless engine is a tree
 * (rootlesskit, its namespaced child, dockerd, containerd, slirp4netns), and processes that
 * daemonize out of it (containerd shims) are found by the engine's runtime directory on their
 * command line. Stopping the engine means none of them is left.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { subidRange } from './rootless-user';

export interface Proc {
  readonly pid: number;
  readonly ppid: number;
  /** Real uid. */
  readonly uid: number;
  readonly comm: string;
  readonly cmdline: string;
  /** Start time in clock ticks after boot: with the pid, who the process is. */
  readonly start: string;
}

function readProc(pid: number): Proc | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm is in parentheses and may hold spaces or parentheses itself: the last ')' ends it.
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const fields = stat.slice(close + 2).split(' ');
    const ppid = Number(fields[1]);
    const uidLine = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
    return { pid, ppid, uid: Number(uidLine?.[1] ?? -1), comm, cmdline, start: fields[19] ?? '' };
  } catch {
    return undefined; // gone meanwhile
  }
}

export function listProcs(): Proc[] {
  const out: Proc[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const p = readProc(Number(name));
    if (p) out.push(p);
  }
  return out;
}

/** `root` and every process below it. */
export function processTree(root: number, procs: readonly Proc[] = listProcs()): Proc[] {
  const children = new Map<number, Proc[]>();
  for (const p of procs) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p]);
  const out: Proc[] = [];
  const top = procs.find((p) => p.pid === root);
  const queue = top ? [top] : [];
  while (queue.length > 0) {
    const p = queue.shift()!;
    out.push(p);
    queue.push(...(children.get(p.pid) ?? []));
  }
  return out;
}

/**
 * Whether `p` is still there (running, or exited and not yet reaped): the same pid with the
 * same start time (a reused pid does not count).
 */
export function stillRunning(p: Proc): boolean {
  try {
    const stat = readFileSync(`/proc/${p.pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] === p.start;
  } catch {
    return false;
  }
}

/**
 * SIGTERM to `first`, then waits for every process of `procs` to end; after `timeoutMs`
 * the ones left get SIGKILL. Returns the processes that could not be ended.
 */
export async function endAll(
  first: number,
  procs: readonly Proc[],
  timeoutMs: number,
  log?: (line: string) => void,
): Promise<Proc[]> {
  const signal = (pid: number, sig: NodeJS.Signals) => {
    try {
      process.kill(pid, sig);
    } catch {}
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  signal(first, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  let left = procs.filter(stillRunning);
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(100);
    left = left.filter(stillRunning);
  }
  if (left.length > 0) {
    log?.(
      `${left.map((p) => `${p.comm} (pid ${p.pid})`).join(', ')} still running after SIGTERM; killing`,
    );
    for (const p of left) signal(p.pid, 'SIGKILL');
    const killDeadline = Date.now() + 5000;
    while (left.length > 0 && Date.now() < killDeadline) {
      await sleep(50);
      left = left.filter(stillRunning);
    }
  }
  return left;
}

/**
 * Every process of the engine started as `top`: its tree, and (rootless) what runs as its
 * user or the user's subordinate ids with its runtime directory or socket on the command line
 * (containerd shims leave the tree when they daemonize).
 */
export function engineProcesses(
  top: number,
  rootless: { user: { name: string; uid: number }; runtimeDir: string; socket: string } | undefined,
): Proc[] {
  const procs = listProcs();
  const mine = new Map(processTree(top, procs).map((p) => [p.pid, p]));
  if (rootless) {
    const sub = subidRange('/etc/subuid', rootless.user);
    const ours = (uid: number) =>
      uid === rootless.user.uid ||
      (sub !== undefined && uid >= sub.start && uid < sub.start + sub.count);
    for (const p of procs) {
      if (p.pid === process.pid || !ours(p.uid)) continue;
      if (p.cmdline.includes(`${rootless.runtimeDir}/`) || p.cmdline.includes(rootless.socket))
        mine.set(p.pid, p);
    }
  }
  return [...mine.values()];
}
