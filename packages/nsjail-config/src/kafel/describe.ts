/** A kafel program in plain words, rule by rule, first match first (as the filter runs). */
import type { Action, Expr, KafelProgram, Policy, SyscallFilter } from './ast';

export function describeAction(a: Action | undefined): string {
  if (!a) return 'killed (kafel default)';
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

export function describeExpr(e: Expr): string {
  switch (e.type) {
    case 'number':
      return e.value > 0xffffn ? `0x${e.value.toString(16)}` : String(e.value);
    case 'ident':
      return e.name;
    case 'not':
      return `not (${describeExpr(e.operand)})`;
    case 'binary': {
      const op = e.op === '&&' ? 'and' : e.op === '||' ? 'or' : e.op;
      return `${describeExpr(e.left)} ${op} ${describeExpr(e.right)}`;
    }
  }
}

function filterText(f: SyscallFilter): string {
  const name = f.syscall.name ?? `syscall ${f.syscall.nr}`;
  const arch = f.archs ? ` (on ${f.archs.join(', ')})` : '';
  return f.expr ? `${name} when ${describeExpr(f.expr)}${arch}` : `${name}${arch}`;
}

/** Flattens USE into the rules it brings, in order. */
export function flattenRules(
  program: KafelProgram,
  policy: Policy | undefined,
  seen = new Set<string>(),
): { action: Action; filters: SyscallFilter[] }[] {
  if (!policy || seen.has(policy.name)) return [];
  seen.add(policy.name);
  const out: { action: Action; filters: SyscallFilter[] }[] = [];
  for (const e of policy.entries) {
    if (e.type === 'use') out.push(...flattenRules(program, program.policies.get(e.policy), seen));
    else out.push({ action: e.action, filters: [...e.filters] });
  }
  seen.delete(policy.name);
  return out;
}

export function describeKafel(program: KafelProgram): string[] {
  const lines: string[] = [];
  for (const rule of flattenRules(program, program.main)) {
    if (rule.filters.length === 0) continue;
    lines.push(`${rule.filters.map(filterText).join(', ')}: ${describeAction(rule.action)}`);
  }
  lines.push(`every other system call: ${describeAction(program.defaultAction)}`);
  return lines;
}
