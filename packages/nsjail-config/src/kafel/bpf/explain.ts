/**
 * A compiled filter in plain words, for one architecture, in the order it decides: the
 * architecture check, x32 (on x86_64), each rule kafel keeps — with the rules that can never
 * apply called out — then what happens to every other call.
 */
import type { KafelProgram } from '../ast';
import { appliesOn, filterArgs } from '../check';
import { describeAction, describeExpr, isX32Filter } from '../describe';
import type { KafelArch } from '../syscalls';
import { lookupSyscall } from '../syscalls';
import { lower, simplify } from './ir';

export function explain(program: KafelProgram, arch: KafelArch): string[] {
  const lines = [`architectures other than ${arch}: the process is killed`];
  if (arch === 'x86_64') lines.push('x32 system calls (nr >= 0x40000000): the process is killed');
  const always = new Set<number>();
  const used = new Set<string>();
  const visit = (name: string | undefined): void => {
    const policy = name === undefined ? undefined : program.policies.get(name);
    for (const entry of policy?.entries ?? []) {
      if (entry.type === 'use') {
        if (!used.has(entry.policy)) {
          used.add(entry.policy);
          visit(entry.policy);
        }
        continue;
      }
      const parts: string[] = [];
      for (const f of entry.filters) {
        if (!appliesOn(f, arch)) continue;
        const nr =
          f.syscall.name !== undefined ? lookupSyscall(arch, f.syscall.name)?.nr : f.syscall.nr;
        if (nr === undefined) continue;
        const label = f.syscall.name ?? f.syscall.constant ?? `syscall ${nr}`;
        const ir = f.expr ? lower(f.expr, filterArgs(f, arch)) : undefined;
        const cond = ir ? simplify(ir) : undefined;
        let text = f.expr && cond?.t !== 'true' ? `${label} when ${describeExpr(f.expr)}` : label;
        // The filter kills x32 calls before it reaches any rule (see compile.ts).
        if (isX32Filter(f, arch)) text += ' (never applies: x32 system calls are killed first)';
        else if (always.has(nr)) text += ' (never applies: an earlier rule always matches it)';
        else if (cond?.t === 'false') text += ' (never applies: the condition is never true)';
        else if (!cond || cond.t === 'true') always.add(nr);
        parts.push(text);
      }
      if (parts.length > 0) lines.push(`${parts.join(', ')}: ${describeAction(entry.action)}`);
    }
  };
  visit(program.main?.name);
  lines.push(`everything else: ${describeAction(program.defaultAction)}`);
  return lines;
}
