/**
 * kafel program -> seccomp classic BPF, with kafel's semantics: rules in order, first match
 * wins, KILL when there is no DEFAULT, 32-bit comparisons when neither side needs more (an
 * argument kafel sizes at 4 bytes and constants up to 2^32-1), both halves otherwise.
 *
 * Differences from kafel, on purpose: other architectures are killed (as kafel does) and, on
 * x86_64, x32 system calls (nr >= 0x40000000) are killed too — kafel lets them through, which
 * lets a policy that forbids `socket` be bypassed with the x32 number of `socket`.
 */
import type { Action, Expr, KafelProgram, SyscallFilter } from '../ast';
import { flattenRules } from '../describe';
import { type KafelArch, lookupSyscall } from '../syscalls';
import { Assembler, BPF, type Label, MAX_INSNS, MEMWORDS, type SockFilter } from './asm';

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
const argOffset = (i: number, hi: boolean) => 16 + 8 * i + (hi ? 4 : 0);

export class KafelCompileError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
    this.name = 'KafelCompileError';
  }
}

export function actionValue(a: Action | undefined): number {
  if (!a) return RET.KILL_THREAD;
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
      return (RET.ERRNO | (a.value! & 0xffff)) >>> 0;
    case 'TRAP':
      return (RET.TRAP | (a.value! & 0xffff)) >>> 0;
    case 'TRACE':
      return (RET.TRACE | (a.value! & 0xffff)) >>> 0;
  }
}

/** One 32-bit word of a value: a constant, a seccomp_data word, or a scratch memory slot. */
type Word = { c: number } | { abs: number } | { mem: number };
interface Value {
  lo: Word;
  hi: Word;
  wide: boolean;
}

class ExprCompiler {
  private slots = 0;

  constructor(
    private readonly asm: Assembler,
    private readonly args: readonly { name: string; size: number }[],
  ) {}

  private slot(at: number): number {
    if (this.slots >= MEMWORDS)
      throw new KafelCompileError('Required stack size exceeds available BPF memory', at);
    return this.slots++;
  }

  private loadA(w: Word): void {
    if ('c' in w) this.asm.emit(BPF.LD_IMM, w.c);
    else if ('abs' in w) this.asm.emit(BPF.LD_W_ABS, w.abs);
    else this.asm.emit(BPF.LD_MEM, w.mem);
  }

  private loadX(w: Word): void {
    if ('c' in w) this.asm.emit(BPF.LDX_IMM, w.c);
    else if ('mem' in w) this.asm.emit(BPF.LDX_MEM, w.mem);
    else {
      this.asm.emit(BPF.LD_W_ABS, w.abs);
      this.asm.emit(BPF.TAX);
    }
  }

  value(e: Expr): Value {
    switch (e.type) {
      case 'number': {
        const v = BigInt.asUintN(64, e.value);
        return {
          lo: { c: Number(v & 0xffffffffn) },
          hi: { c: Number(v >> 32n) },
          wide: v > 0xffffffffn,
        };
      }
      case 'ident': {
        const i = this.args.findIndex((a) => a.name === e.name);
        if (i < 0) throw new KafelCompileError(`Undefined identifier \`${e.name}'`, e.offset);
        return {
          lo: { abs: argOffset(i, false) },
          hi: { abs: argOffset(i, true) },
          wide: this.args[i]!.size === 8,
        };
      }
      case 'binary': {
        if (e.op !== '&' && e.op !== '|')
          throw new KafelCompileError('a comparison is not a value', e.offset);
        const l = this.value(e.left);
        const r = this.value(e.right);
        return {
          lo: this.combine(e.op, l.lo, r.lo, e.offset),
          hi: this.combine(e.op, l.hi, r.hi, e.offset),
          wide: l.wide || r.wide,
        };
      }
      case 'not':
        throw new KafelCompileError('`!` applies to conditions, not values', e.offset);
    }
  }

  private combine(op: '&' | '|', l: Word, r: Word, at: number): Word {
    if ('c' in l && 'c' in r) return { c: (op === '&' ? l.c & r.c : l.c | r.c) >>> 0 };
    if ('c' in l) [l, r] = [r, l];
    const s = this.slot(at);
    if ('c' in r) {
      this.loadA(l);
      this.asm.emit(op === '&' ? BPF.ALU_AND_K : BPF.ALU_OR_K, r.c);
    } else {
      this.loadX(r);
      this.loadA(l);
      this.asm.emit(op === '&' ? BPF.ALU_AND_X : BPF.ALU_OR_X);
    }
    this.asm.emit(BPF.ST, s);
    return { mem: s };
  }

  /** Jumps to t when `l op r` holds for one word (op: JEQ, JGT or JGE), else to f. */
  private word(op: 'eq' | 'gt' | 'ge', l: Word, r: Word, t: Label, f: Label): void {
    if ('c' in l && 'c' in r) {
      const ok = op === 'eq' ? l.c === r.c : op === 'gt' ? l.c > r.c : l.c >= r.c;
      this.asm.emit(BPF.JA, 0, ok ? t : f);
      return;
    }
    if ('c' in l) {
      // c > x  <=>  !(x >= c);  c >= x  <=>  !(x > c)
      if (op === 'gt') {
        this.word('ge', r, l, f, t);
        return;
      }
      if (op === 'ge') {
        this.word('gt', r, l, f, t);
        return;
      }
      this.word('eq', r, l, t, f);
      return;
    }
    const code = {
      eq: [BPF.JEQ_K, BPF.JEQ_X],
      gt: [BPF.JGT_K, BPF.JGT_X],
      ge: [BPF.JGE_K, BPF.JGE_X],
    }[op];
    if ('c' in r) {
      this.loadA(l);
      this.asm.emit(code[0]!, r.c, t, f);
    } else {
      this.loadX(r);
      this.loadA(l);
      this.asm.emit(code[1]!, 0, t, f);
    }
  }

  private compare(op: string, l: Value, r: Value, t: Label, f: Label): void {
    const wide = l.wide || r.wide;
    const a = this.asm;
    if (op === '!=') {
      this.compare('==', l, r, f, t);
      return;
    }
    if (op === '<') {
      this.compare('>=', l, r, f, t);
      return;
    }
    if (op === '<=') {
      this.compare('>', l, r, f, t);
      return;
    }
    const lowOp = op === '==' ? 'eq' : op === '>' ? 'gt' : 'ge';
    if (!wide) {
      this.word(lowOp, l.lo, r.lo, t, f);
      return;
    }
    const lo = a.label();
    if (op === '==') {
      this.word('eq', l.hi, r.hi, lo, f);
    } else {
      const eqHi = a.label();
      this.word('gt', l.hi, r.hi, t, eqHi);
      a.place(eqHi);
      this.word('eq', l.hi, r.hi, lo, f);
    }
    a.place(lo);
    this.word(lowOp, l.lo, r.lo, t, f);
  }

  /** Jumps to t when the condition holds, else to f (short-circuit). */
  cond(e: Expr, t: Label, f: Label): void {
    if (e.type === 'not') {
      this.cond(e.operand, f, t);
      return;
    }
    if (e.type !== 'binary') throw new KafelCompileError('expected a comparison', e.offset);
    if (e.op === '&&' || e.op === '||') {
      const mid = this.asm.label();
      if (e.op === '&&') this.cond(e.left, mid, f);
      else this.cond(e.left, t, mid);
      this.asm.place(mid);
      this.cond(e.right, t, f);
      return;
    }
    if (e.op === '&' || e.op === '|')
      throw new KafelCompileError('expected a comparison', e.offset);
    const before = this.slots;
    this.compare(e.op, this.value(e.left), this.value(e.right), t, f);
    this.slots = before;
  }
}

export interface CompileOptions {
  arch: KafelArch;
}

function filterArgs(
  f: SyscallFilter,
  arch: KafelArch,
): { nr: number; args: { name: string; size: number }[] } | undefined {
  if (f.archs && !f.archs.includes(arch)) return undefined;
  const custom = f.syscall.customArgs?.map((name) => ({ name, size: 8 }));
  if (f.syscall.name !== undefined) {
    const info = lookupSyscall(arch, f.syscall.name);
    if (!info)
      throw new KafelCompileError(`Undefined identifier \`${f.syscall.name}'`, f.syscall.offset);
    return { nr: info.nr, args: custom ?? [...info.args] };
  }
  return { nr: f.syscall.nr!, args: custom ?? [] };
}

/** Compiles a parsed kafel program for one architecture into a seccomp filter. */
export function compileKafel(program: KafelProgram, opts: CompileOptions): SockFilter[] {
  const a = new Assembler();
  const kill = a.label('kill-arch');
  const go = a.label('syscalls');
  a.emit(BPF.LD_W_ABS, OFF_ARCH);
  a.emit(BPF.JEQ_K, AUDIT_ARCH[opts.arch], go, kill);
  a.place(kill);
  a.emit(BPF.RET_K, RET.KILL_PROCESS);
  a.place(go);
  a.emit(BPF.LD_W_ABS, OFF_NR);
  if (opts.arch === 'x86_64') {
    const x32 = a.label('x32');
    const native = a.label('native');
    a.emit(BPF.JGE_K, X32_SYSCALL_BIT, x32, native);
    a.place(x32);
    a.emit(BPF.RET_K, RET.KILL_PROCESS);
    a.place(native);
  }
  let aHoldsNr = true;
  for (const rule of flattenRules(program, program.main)) {
    const ret = actionValue(rule.action);
    for (const f of rule.filters) {
      const spec = filterArgs(f, opts.arch);
      if (!spec) continue;
      if (!aHoldsNr) a.emit(BPF.LD_W_ABS, OFF_NR);
      const body = a.label();
      const next = a.label();
      const hit = a.label();
      a.emit(BPF.JEQ_K, spec.nr, body, next);
      a.place(body);
      if (f.expr) new ExprCompiler(a, spec.args).cond(f.expr, hit, next);
      a.place(hit);
      a.emit(BPF.RET_K, ret);
      a.place(next);
      aHoldsNr = !f.expr;
    }
  }
  a.emit(BPF.RET_K, actionValue(program.defaultAction));
  const prog = a.assemble();
  if (prog.length > MAX_INSNS) {
    throw new KafelCompileError(
      `Filter length exceeds maximum seccomp filter length: ${prog.length} > ${MAX_INSNS}`,
      0,
    );
  }
  return prog;
}
