/**
 * kafel program → seccomp filter for one architecture, with kafel's semantics:
 * - rules apply in order and the first that matches a call wins; a rule whose condition
 *   simplifies to false is dropped, one that is always true ends the list for its call;
 * - USE brings a policy's rules in at that point, once (kafel skips a policy used again);
 * - no DEFAULT means KILL (SECCOMP_RET_KILL_THREAD, kafel's KILL);
 * - calls are found by a binary search on the number (as kafel does), so a large allow-list
 *   costs a handful of instructions per call rather than one per entry.
 *
 * Where we deliberately differ from kafel (documented in docs/policies.md, "Seccomp under bubblewrap"):
 * - another architecture's calls kill the process (kafel: SECCOMP_RET_KILL, the thread only),
 *   and the check is always there (kafel leaves it out when every call would be killed);
 * - on x86_64, x32 calls (nr >= 0x40000000, the x32 ABI bit) kill the process before any rule
 *   is consulted. kafel lets them reach the rules, where no kafel name matches them, so
 *   `DEFAULT ALLOW` deny-lists can be sidestepped through the x32 numbers of the same calls
 *   on kernels built with x32 support. A policy's own `SYSCALL[n]` rules for such numbers never
 *   apply under ktl;
 * - programs longer than the kernel's 4096 instructions are refused here rather than by
 *   seccomp(2) later (kafel's own limit is 65535).
 */
import type { Action, KafelProgram, Span, SyscallFilter } from '../ast';
import { appliesOn, filterArgs } from '../check';
import { type KafelArch, lookupSyscall, suggestSyscall } from '../syscalls';
import { Assembler, BPF, type Label, MAX_INSNS, MEMWORDS, type SockFilter, serialize } from './asm';
import { CondCompiler } from './cond';
import { type IR, lower, simplify } from './ir';

export const AUDIT_ARCH = { x86_64: 0xc000003e, aarch64: 0xc00000b7 } as const;
export const X32_SYSCALL_BIT = 0x40000000;

export const RET = {
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0x00000000,
  TRAP: 0x00030000,
  ERRNO: 0x00050000,
  USER_NOTIF: 0x7fc00000,
  TRACE: 0x7ff00000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
} as const;

const OFF_NR = 0;
const OFF_ARCH = 4;

export class KafelCompileError extends Error {
  constructor(
    message: string,
    /** Offset of the offending text in the policy source (0 when it is the whole program). */
    readonly offset: number,
    readonly hint?: string,
    readonly length = 0,
  ) {
    super(message);
    this.name = 'KafelCompileError';
  }
}

/** The SECCOMP_RET_* value kafel gives an action (data masked to 16 bits). */
export function actionValue(a: Action | undefined): number {
  if (!a) return RET.KILL_THREAD;
  const data = (a.value ?? 0) & 0xffff;
  switch (a.kind) {
    case 'ALLOW':
      return RET.ALLOW;
    case 'LOG':
      return RET.LOG;
    case 'KILL':
      return RET.KILL_THREAD;
    case 'KILL_PROCESS':
      return RET.KILL_PROCESS;
    case 'USER_NOTIF':
      return RET.USER_NOTIF;
    case 'ERRNO':
      return (RET.ERRNO | data) >>> 0;
    case 'TRAP':
      return (RET.TRAP | data) >>> 0;
    case 'TRACE':
      return (RET.TRACE | data) >>> 0;
  }
}

/** One rule as it reaches a call: its condition (undefined = always) and what it returns. */
export interface ResolvedRule {
  readonly filter: SyscallFilter;
  readonly action: Action;
  readonly cond: IR | undefined;
}

/** A call's rules in order, cut after the first unconditional one (which is `final`). */
export interface CallRules {
  readonly nr: number;
  readonly conds: ResolvedRule[];
  final?: ResolvedRule;
  /** Rules that can never apply because an earlier one always matches. */
  readonly shadowed: ResolvedRule[];
}

function fault(message: string, at: Span, hint?: string): never {
  throw new KafelCompileError(message, at.offset, hint, at.length);
}

function resolve(
  f: SyscallFilter,
  action: Action,
  arch: KafelArch,
): { nr: number; rule: ResolvedRule } | undefined {
  let nr = f.syscall.nr;
  if (f.syscall.name !== undefined) {
    const info = lookupSyscall(arch, f.syscall.name);
    if (!info)
      fault(
        `Undefined identifier \`${f.syscall.name}'`,
        f.syscall,
        suggestSyscall(arch, f.syscall.name),
      );
    nr = info.nr;
  }
  let cond: IR | undefined;
  if (f.expr) {
    const ir = lower(f.expr, filterArgs(f, arch));
    if (!ir)
      fault(
        'Undefined identifier in condition',
        f.expr,
        `parse the policy for ${arch} first: it reports which name`,
      );
    cond = simplify(ir);
    if (cond.t === 'false') return undefined;
    if (cond.t === 'true') cond = undefined;
  }
  return { nr: nr!, rule: { filter: f, action, cond } };
}

/** kafel's rule list for `arch`: main's rules with USE expanded, grouped by call number. */
export function collectRules(program: KafelProgram, arch: KafelArch): Map<number, CallRules> {
  const calls = new Map<number, CallRules>();
  const used = new Set<string>();
  const visit = (name: string | undefined): void => {
    const policy = name === undefined ? undefined : program.policies.get(name);
    for (const entry of policy?.entries ?? []) {
      if (entry.type === 'use') {
        if (used.has(entry.policy)) continue;
        used.add(entry.policy);
        visit(entry.policy);
        continue;
      }
      for (const f of entry.filters) {
        if (!appliesOn(f, arch)) continue;
        const r = resolve(f, entry.action, arch);
        if (!r) continue;
        let call = calls.get(r.nr);
        if (!call) {
          call = { nr: r.nr, conds: [], shadowed: [] };
          calls.set(r.nr, call);
        }
        if (call.final) call.shadowed.push(r.rule);
        else if (r.rule.cond) call.conds.push(r.rule);
        else call.final = r.rule;
      }
    }
  };
  visit(program.main?.name);
  return calls;
}

type Leaf = { ret: number } | { call: CallRules };
interface Range {
  first: number;
  leaf: Leaf;
}

/** Number ranges covering 0..2^32-1, each one leaf; neighbours returning the same merged. */
function ranges(calls: Map<number, CallRules>, fallback: number): Range[] {
  const out: Range[] = [];
  const push = (first: number, leaf: Leaf): void => {
    const prev = out[out.length - 1];
    if (prev && 'ret' in prev.leaf && 'ret' in leaf && prev.leaf.ret === leaf.ret) return;
    out.push({ first, leaf });
  };
  let next = 0;
  for (const nr of [...calls.keys()].sort((a, b) => a - b)) {
    const call = calls.get(nr)!;
    if (nr > next) push(next, { ret: fallback });
    const final = call.final ? actionValue(call.final.action) : fallback;
    // A condition at the end that returns what falling through returns decides nothing.
    let keep = call.conds.length;
    while (keep > 0 && actionValue(call.conds[keep - 1]!.action) === final) keep--;
    push(nr, keep === 0 ? { ret: final } : { call: { ...call, conds: call.conds.slice(0, keep) } });
    next = nr + 1;
  }
  if (next <= 0xffffffff) push(next, { ret: fallback });
  return out;
}

/** Emits code and hands out the labels of shared return instructions, placed at the end. */
class Emitter {
  private readonly rets = new Map<number, Label>();
  readonly cc: CondCompiler;

  constructor(
    readonly a: Assembler,
    private readonly fallback: number,
  ) {
    this.cc = new CondCompiler(a);
  }

  ret(value: number): Label {
    let l = this.rets.get(value);
    if (!l) {
      l = this.a.label();
      this.rets.set(value, l);
    }
    return l;
  }

  finish(): void {
    for (const [value, l] of this.rets) {
      this.a.place(l);
      this.a.emit(BPF.RET_K, value);
    }
  }

  /** A call's rules: each condition jumps to its action's return, the last rule returns inline. */
  private leaf(leaf: Leaf): void {
    if ('ret' in leaf) {
      this.a.emit(BPF.RET_K, leaf.ret);
      return;
    }
    for (const rule of leaf.call.conds) {
      const miss = this.a.label();
      this.cc.cond(rule.cond!, this.ret(actionValue(rule.action)), miss);
      this.a.place(miss);
    }
    const final = leaf.call.final;
    this.a.emit(BPF.RET_K, final ? actionValue(final.action) : this.fallback);
  }

  private target(rs: Range[], lo: number, hi: number): Label {
    const only = lo === hi ? rs[lo]!.leaf : undefined;
    return only && 'ret' in only ? this.ret(only.ret) : this.a.label();
  }

  /**
   * Binary search on the call number (in A): each `>=` test halves the ranges, so at a leaf A
   * lies within exactly that leaf's range. A lone return leaf is not emitted in place: the test
   * jumps straight to the shared return.
   */
  tree(rs: Range[], lo: number, hi: number): void {
    if (lo === hi) {
      this.leaf(rs[lo]!.leaf);
      return;
    }
    const mid = (lo + hi + 1) >> 1;
    const right = this.target(rs, mid, hi);
    const left = this.target(rs, lo, mid - 1);
    this.a.jump(BPF.JGE_K, rs[mid]!.first, right, left);
    if (!this.isRet(left)) {
      this.a.place(left);
      this.tree(rs, lo, mid - 1);
    }
    if (!this.isRet(right)) {
      this.a.place(right);
      this.tree(rs, mid, hi);
    }
  }

  private isRet(l: Label): boolean {
    for (const r of this.rets.values()) if (r === l) return true;
    return false;
  }
}

export interface CompileOptions {
  arch: KafelArch;
}

/** Compiles a parsed kafel program for one architecture into seccomp BPF instructions. */
export function compileKafel(program: KafelProgram, opts: CompileOptions): SockFilter[] {
  const { arch } = opts;
  const fallback = actionValue(program.defaultAction);
  const calls = collectRules(program, arch);
  const a = new Assembler();
  const wrongArch = a.label();
  const native = a.label();
  a.load(BPF.LD_W_ABS, OFF_ARCH);
  a.jump(BPF.JEQ_K, AUDIT_ARCH[arch], native, wrongArch);
  a.place(wrongArch);
  a.emit(BPF.RET_K, RET.KILL_PROCESS);
  a.place(native);
  a.load(BPF.LD_W_ABS, OFF_NR);
  if (arch === 'x86_64') {
    const x32 = a.label();
    const rules = a.label();
    a.jump(BPF.JGE_K, X32_SYSCALL_BIT, x32, rules);
    a.place(x32);
    a.emit(BPF.RET_K, RET.KILL_PROCESS);
    a.place(rules);
  }
  const em = new Emitter(a, fallback);
  const rs = ranges(calls, fallback);
  em.tree(rs, 0, rs.length - 1);
  em.finish();
  if (em.cc.maxStack >= MEMWORDS)
    throw new KafelCompileError(
      'Required stack size exceeds available BPF memory',
      0,
      'a condition nests `&`/`|` between arguments too deeply; simplify it',
    );
  const prog = a.assemble();
  if (prog.length > MAX_INSNS)
    throw new KafelCompileError(
      `Filter length exceeds maximum seccomp filter length: ${prog.length} > ${MAX_INSNS}`,
      0,
      'the kernel refuses longer filters; split long conditions or merge rules',
    );
  return prog;
}

/** compileKafel, serialized as bwrap's --seccomp reads it: `struct sock_filter[]`, little-endian. */
export function compile(program: KafelProgram, arch: KafelArch): Uint8Array {
  return serialize(compileKafel(program, { arch }));
}
