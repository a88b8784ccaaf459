/**
 * bubblewrap has no flags for rlimits, niceness, CPU affinity, personality or OOM score, but
 * all of them are inherited across fork and exec. So the runner execs a chain of small
 * util-linux/coreutils tools in front of bwrap (nice, taskset, setarch, choom, then prlimit
 * last so the other wrappers run unrestricted); each sets its property on itself and execs the
 * next, and the jailed command inherits them. Values follow nsjail (contain.cc, cpu.cc):
 * rlimits set soft = hard, in nsjail's units; SOFT/HARD mean the runner's own current limit.
 */
import { readFileSync } from 'node:fs';
import { getPriority, machine } from 'node:os';
import type { NsJailConfig, RLimitType } from '@ktl/nsjail-config';
import { eff } from './eff';
import { SandboxError } from './errors';
import { which } from './runtimes';

const MIB = 1024n * 1024n;
const RLIM_INFINITY = 2n ** 64n - 1n;

type RlimitKey =
  | 'as'
  | 'core'
  | 'cpu'
  | 'fsize'
  | 'nofile'
  | 'nproc'
  | 'stack'
  | 'memlock'
  | 'rtprio'
  | 'msgqueue';

/** Resource, its multiplier to the kernel unit, and its row in /proc/self/limits. */
const RLIMITS: readonly [RlimitKey, bigint, string][] = [
  ['as', MIB, 'Max address space'],
  ['core', MIB, 'Max core file size'],
  ['cpu', 1n, 'Max cpu time'],
  ['fsize', MIB, 'Max file size'],
  ['nofile', 1n, 'Max open files'],
  ['nproc', 1n, 'Max processes'],
  ['stack', MIB, 'Max stack size'],
  ['memlock', 1024n, 'Max locked memory'],
  ['rtprio', 1n, 'Max realtime priority'],
  ['msgqueue', 1n, 'Max msgqueue size'],
];

/** The runner's own limits, which nsjail's SOFT and HARD refer to. */
export function currentLimits(
  text = readFileSync('/proc/self/limits', 'utf8'),
): Map<string, [bigint, bigint]> {
  const out = new Map<string, [bigint, bigint]>();
  const num = (s: string) => (s === 'unlimited' ? RLIM_INFINITY : BigInt(s));
  for (const line of text.split('\n').slice(1)) {
    const m = /^(.+?)\s{2,}(\S+)\s+(\S+)/.exec(line);
    if (m && /^\d+$|^unlimited$/.test(m[2]!) && /^\d+$|^unlimited$/.test(m[3]!)) {
      out.set(m[1]!.trim(), [num(m[2]!), num(m[3]!)]);
    }
  }
  return out;
}

/** `prlimit --nofile=32:32 ...` options for the policy; empty with disable_rl. */
export function rlimitArgs(p: NsJailConfig, limits = currentLimits()): string[] {
  if (eff(p, 'disable_rl')) return [];
  return RLIMITS.map(([key, mul, row]) => {
    const type = eff(p, `rlimit_${key}_type` as 'rlimit_as_type') as RLimitType;
    const value = eff(p, `rlimit_${key}` as 'rlimit_as') as bigint;
    const own = limits.get(row);
    let v: bigint;
    if (type === 'VALUE') v = value * mul;
    else if (type === 'INF') v = RLIM_INFINITY;
    else if (own === undefined) throw new Error(`cannot read the current ${row} limit`);
    else v = type === 'SOFT' ? own[0] : own[1];
    // nsjail computes in uint64 too; anything at or past the top is "unlimited".
    const s = v >= RLIM_INFINITY ? 'unlimited' : String(v);
    return `--${key}=${s}:${s}`;
  });
}

function allowedCpus(): number[] {
  const status = readFileSync('/proc/self/status', 'utf8');
  const list = /^Cpus_allowed_list:\s*(.+)$/m.exec(status)?.[1] ?? '';
  const cpus: number[] = [];
  for (const part of list.split(',')) {
    const [a, b] = part.split('-').map(Number);
    if (a === undefined || Number.isNaN(a)) continue;
    for (let c = a; c <= (b ?? a); c++) cpus.push(c);
  }
  return cpus;
}

/** nsjail picks max_cpus random CPUs out of its current affinity (cpu.cc). */
function pickCpus(max: number): number[] | undefined {
  const cpus = allowedCpus();
  if (max === 0 || max >= cpus.length) return undefined;
  const picked: number[] = [];
  const left = [...cpus];
  while (picked.length < max)
    picked.push(left.splice(Math.floor(Math.random() * left.length), 1)[0]!);
  return picked.sort((a, b) => a - b);
}

const PERSONA: readonly [keyof NsJailConfig, string][] = [
  ['persona_addr_compat_layout', '--addr-compat-layout'],
  ['persona_mmap_page_zero', '--mmap-page-zero'],
  ['persona_read_implies_exec', '--read-implies-exec'],
  ['persona_addr_limit_3gb', '--3gb'],
  ['persona_addr_no_randomize', '--addr-no-randomize'],
];

function tool(name: string, field: string, pkg: string): string {
  const p = which(name, process.env) ?? which(name, { PATH: '/usr/bin:/bin:/usr/sbin:/sbin' });
  if (p === undefined) {
    throw new SandboxError(
      `bwrap cannot enforce ${field}: the ${name} tool (${pkg}) is not installed`,
      { code: 'E_UNENFORCEABLE', hint: `install ${pkg}, or use runtime 'nsjail'` },
    );
  }
  return p;
}

/** The wrapper argv that goes in front of bwrap (empty when none is needed). */
export function hostWrappers(p: NsJailConfig): string[] {
  const argv: string[] = [];
  const nice = eff(p, 'nice_level');
  const adj = nice - getPriority(0);
  if (adj !== 0) argv.push(tool('nice', 'nice_level', 'coreutils'), '-n', String(adj));
  const cpus = pickCpus(eff(p, 'max_cpus'));
  if (cpus) argv.push(tool('taskset', 'max_cpus', 'util-linux'), '-c', cpus.join(','));
  const persona = PERSONA.filter(([f]) => p[f] === true);
  if (persona.length > 0) {
    argv.push(
      tool('setarch', persona[0]![0], 'util-linux'),
      machine(),
      ...persona.map(([, f]) => f),
    );
  }
  if (p.oom_score_adj !== undefined) {
    argv.push(tool('choom', 'oom_score_adj', 'util-linux'), '-n', String(p.oom_score_adj), '--');
  }
  const rl = rlimitArgs(p);
  if (rl.length > 0) argv.push(tool('prlimit', 'rlimit_*', 'util-linux'), ...rl, '--');
  return argv;
}
