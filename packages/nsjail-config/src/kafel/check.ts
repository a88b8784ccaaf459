/**
 * What kafel checks after parsing and before compiling: every system call name, and every
 * argument name in a condition, must exist for the target architecture. kafel checks every
 * policy (used or not) in the order they were completed — `@main` counts from its first
 * top-level statement — skips filters guarded `ON` other architectures, and stops at the first
 * problem. Arguments come from the table, or from the names declared inline, which replace
 * them; `SYSCALL[n]` without declared names has none.
 */
import type { Expr, Policy, SyscallFilter } from './ast';
import { fail, lineColumn } from './errors';
import { nearest, quoteList } from './nearest';
import type { ParsedKafel } from './parser';
import { type KafelArch, lookupSyscall, type SyscallArg, suggestSyscall } from './syscalls';

/** The arguments a filter's condition may name, as kafel resolves them (inline names are 64-bit). */
export function filterArgs(f: SyscallFilter, arch: KafelArch): SyscallArg[] {
  if (f.syscall.customArgs) return f.syscall.customArgs.map((name) => ({ name, size: 8 }));
  if (f.syscall.name !== undefined) return [...(lookupSyscall(arch, f.syscall.name)?.args ?? [])];
  return [];
}

/** Whether a filter applies on `arch` (no `ON` guard, or one that names it). */
export function appliesOn(f: SyscallFilter, arch: KafelArch): boolean {
  return !f.archs || f.archs.includes(arch);
}

function* identifiers(e: Expr): Generator<Extract<Expr, { type: 'ident' }>> {
  if (e.type === 'ident') yield e;
  else if (e.type === 'not') yield* identifiers(e.operand);
  else if (e.type === 'binary') {
    yield* identifiers(e.left);
    yield* identifiers(e.right);
  }
}

function definedLater(p: ParsedKafel, source: string, name: string): string | undefined {
  const at = p.constantAt.get(name);
  if (at === undefined) return undefined;
  return `\`${name}\` is #defined later, at line ${lineColumn(source, at).line}: kafel substitutes a constant only after its #define`;
}

function syscallLabel(f: SyscallFilter): string {
  if (f.syscall.name !== undefined) return f.syscall.name;
  return f.syscall.constant ?? `SYSCALL[${f.syscall.nr}]`;
}

function argumentHint(
  p: ParsedKafel,
  source: string,
  f: SyscallFilter,
  arch: KafelArch,
  name: string,
): string {
  const later = definedLater(p, source, name);
  if (later) return later;
  const args = filterArgs(f, arch).map((a) => a.name);
  const label = syscallLabel(f);
  const near = nearest(name, [...args, ...p.constants.keys()], 1);
  const mean = near.length > 0 ? `did you mean \`${near[0]}\`? ` : '';
  if (args.length === 0) {
    const declare = f.syscall.customArgs
      ? 'it declares no argument names'
      : 'kafel knows no argument names for it';
    return `${mean}${label} has no named arguments (${declare}): declare them, e.g. \`${label}(a, b) { a == 1 }\``;
  }
  const table =
    f.syscall.name !== undefined ? lookupSyscall(arch, f.syscall.name)?.args : undefined;
  if (f.syscall.customArgs && table && table.length > 0)
    return `${mean}the names declared in \`${label}(...)\` replace kafel's (${quoteList(
      table.map((a) => a.name),
      'and',
    )}); ${label} here has ${quoteList(args, 'and')}`;
  const unwritable = args.filter((a) => a.startsWith('_'));
  const note =
    unwritable.length > 0
      ? `; kafel's names starting with \`_\` cannot be written (identifiers start with a letter): declare your own, e.g. \`${label}(${args.map((a) => a.replace(/^_+/, '')).join(', ')})\``
      : '';
  return `${mean}${label}'s arguments on ${arch}: ${quoteList(args, 'and')}${note}`;
}

/** suggestSyscall's hint, or a #define of a similar name when that is the better guess. */
function syscallHint(p: ParsedKafel, arch: KafelArch, name: string): string | undefined {
  const hint = suggestSyscall(arch, name);
  const constant = nearest(name, p.constants.keys(), 1)[0];
  if (!constant || !hint) return hint;
  if (hint.startsWith('no system call')) return `did you mean the #define \`${constant}\`?`;
  if (hint.startsWith('did you mean')) return `${hint} (or the #define \`${constant}\`)`;
  return hint;
}

function checkFilter(p: ParsedKafel, source: string, f: SyscallFilter, arch: KafelArch): void {
  if (!appliesOn(f, arch)) return;
  const name = f.syscall.name;
  if (name !== undefined && !lookupSyscall(arch, name)) {
    const hint = definedLater(p, source, name) ?? syscallHint(p, arch, name);
    fail('E_KAFEL_UNKNOWN_SYSCALL', `Undefined identifier \`${name}'`, f.syscall, hint);
  }
  if (!f.expr) return;
  const known = new Set(filterArgs(f, arch).map((a) => a.name));
  for (const id of identifiers(f.expr)) {
    if (!known.has(id.name))
      fail(
        'E_KAFEL_UNKNOWN_ARGUMENT',
        `Undefined identifier \`${id.name}'`,
        id,
        argumentHint(p, source, f, arch, id.name),
      );
  }
}

/** kafel's validate_references for one target architecture; throws the first problem. */
export function checkReferences(p: ParsedKafel, source: string, arch: KafelArch): void {
  const policies: Iterable<Policy> = p.policies.values();
  for (const policy of policies) {
    for (const entry of policy.entries) {
      if (entry.type !== 'action') continue;
      for (const f of entry.filters) checkFilter(p, source, f, arch);
    }
  }
}
