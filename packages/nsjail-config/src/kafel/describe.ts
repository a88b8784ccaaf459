/** A kafel program in plain words, rule by rule, first match first (as the filter runs). */
import type { Action, Expr, KafelProgram, Policy, SyscallFilter } from './ast';
import { X32_SYSCALL_BIT } from './bpf/compile';
import { appliesOn } from './check';
import { hostKafelArch, type KafelArch, lookupSyscall } from './syscalls';

export function describeAction(a: Action | undefined): string {
  if (!a) return "the thread is killed (kafel's default)";
  switch (a.kind) {
    case 'ALLOW':
      return 'allowed';
    case 'LOG':
      return 'allowed and logged';
    case 'KILL':
      return 'the thread is killed';
    case 'KILL_PROCESS':
      return 'the process is killed';
    case 'USER_NOTIF':
      return 'sent to a user-space supervisor';
    case 'ERRNO':
      return `fails with errno ${a.value}`;
    case 'TRAP':
      return `SIGSYS (trap ${a.value})`;
    case 'TRACE':
      return `reported to a tracer (${a.value})`;
  }
}

const PRECEDENCE: Record<string, number> = { '||': 1, '&&': 2, '|': 4, '&': 5 };
const precedence = (e: Expr): number =>
  e.type === 'binary' ? (PRECEDENCE[e.op] ?? 3) : e.type === 'not' ? 6 : 7;

/** A condition in words, parenthesised where kafel's precedence needs it. */
export function describeExpr(e: Expr): string {
  switch (e.type) {
    case 'number':
      if (e.constant) return e.constant;
      return e.value > 0xffffn ? `0x${e.value.toString(16)}` : String(e.value);
    case 'ident':
      return e.name;
    case 'not':
      return `not (${describeExpr(e.operand)})`;
    case 'binary': {
      const op = e.op === '&&' ? 'and' : e.op === '||' ? 'or' : e.op;
      const p = precedence(e);
      const side = (c: Expr, strict: boolean): string => {
        const cp = precedence(c);
        const text = describeExpr(c);
        return cp < p || (strict && cp === p) ? `(${text})` : text;
      };
      return `${side(e.left, false)} ${op} ${side(e.right, p === 3)}`;
    }
  }
}

function filterText(f: SyscallFilter): string {
  const name = f.syscall.name ?? `syscall ${f.syscall.nr}`;
  const arch = f.archs ? ` (on ${f.archs.join(', ')})` : '';
  return f.expr ? `${name} when ${describeExpr(f.expr)}${arch}` : `${name}${arch}`;
}

/**
 * The rules in the order they apply, USE expanded where it stands. Like kafel, a policy
 * brings its rules in at its first USE only (a repeat could never match anything new).
 */
export function flattenRules(
  program: KafelProgram,
  policy: Policy | undefined,
  used = new Set<string>(),
): { action: Action; filters: SyscallFilter[] }[] {
  const out: { action: Action; filters: SyscallFilter[] }[] = [];
  for (const e of policy?.entries ?? []) {
    if (e.type === 'action') {
      out.push({ action: e.action, filters: [...e.filters] });
    } else if (!used.has(e.policy)) {
      used.add(e.policy);
      out.push(...flattenRules(program, program.policies.get(e.policy), used));
    }
  }
  return out;
}

/** True when `f` names an x32 number (`SYSCALL[-1]` is 0xffffffff) on x86_64. */
export function isX32Filter(f: SyscallFilter, arch: KafelArch): boolean {
  if (arch !== 'x86_64' || !appliesOn(f, arch)) return false;
  const nr = f.syscall.name !== undefined ? lookupSyscall(arch, f.syscall.name)?.nr : f.syscall.nr;
  return nr !== undefined && nr >= X32_SYSCALL_BIT;
}

export interface DescribeKafelOptions {
  /** Where the jail runs: x32 numbers exist on x86_64 only. Defaults to this machine's. */
  arch?: KafelArch;
  /**
   * Also say where ktl's filter for bubblewrap does otherwise than kafel (nsjail): it kills
   * every x32 call before the rules, so a rule for such a number never applies there.
   */
  bwrapDifferences?: boolean;
}

/** What kafel's filter, as nsjail compiles it, does with each call. */
export function describeKafel(program: KafelProgram, opts: DescribeKafelOptions = {}): string[] {
  const arch = opts.arch ?? hostKafelArch();
  const lines: string[] = [];
  for (const rule of flattenRules(program, program.main)) {
    if (rule.filters.length === 0) continue;
    const action = describeAction(rule.action);
    const x32 = opts.bwrapDifferences ? rule.filters.filter((f) => isX32Filter(f, arch)) : [];
    const rest = rule.filters.filter((f) => !x32.includes(f));
    if (rest.length > 0) lines.push(`${rest.map(filterText).join(', ')}: ${action}`);
    if (x32.length > 0)
      lines.push(
        `${x32.map(filterText).join(', ')}: ${action} under nsjail; under bubblewrap the process is killed (an x32 system call number: ktl's filter kills every nr >= 0x40000000 before any rule)`,
      );
  }
  lines.push(`every other system call: ${describeAction(program.defaultAction)}`);
  return lines;
}
