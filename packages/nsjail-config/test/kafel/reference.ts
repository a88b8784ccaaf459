/**
 * What a kafel program decides for one system call, computed directly from the AST with
 * kafel's semantics (first matching rule, USE once, 32-bit comparisons unless a side is
 * 64-bit), plus ktl's two additions (other architectures and x32 calls kill the process).
 * It shares only the name resolution and kafel's simplification with the compiler, which are
 * what decide whether a comparison is 64-bit; the BPF code generation is what it checks.
 */
import type { KafelArch, KafelProgram } from '../../src/kafel';
import { AUDIT_ARCH, actionValue, RET } from '../../src/kafel/bpf';
import { type IR, is64, lower, simplify } from '../../src/kafel/bpf/ir';
import { appliesOn, filterArgs } from '../../src/kafel/check';
import { flattenRules } from '../../src/kafel/describe';
import { lookupSyscall } from '../../src/kafel/syscalls';
import type { SeccompData } from './bpf-vm';

const U32 = 0xffffffffn;

function value(e: IR, args: readonly bigint[]): bigint {
  switch (e.t) {
    case 'num':
      return e.v;
    case 'var':
      return BigInt.asUintN(64, args[e.i] ?? 0n);
    case 'band':
      return value(e.l, args) & value(e.r, args);
    case 'bor':
      return value(e.l, args) | value(e.r, args);
    default:
      throw new Error(`not a value: ${e.t}`);
  }
}

function holds(e: IR, args: readonly bigint[]): boolean {
  switch (e.t) {
    case 'true':
      return true;
    case 'false':
      return false;
    case 'not':
      return !holds(e.c, args);
    case 'and':
      return holds(e.l, args) && holds(e.r, args);
    case 'or':
      return holds(e.l, args) || holds(e.r, args);
    case 'num':
    case 'var':
    case 'band':
    case 'bor':
      throw new Error(`not a condition: ${e.t}`);
    default: {
      const wide = is64(e.l) || is64(e.r);
      let l = value(e.l, args);
      let r = value(e.r, args);
      if (!wide) [l, r] = [l & U32, r & U32];
      switch (e.t) {
        case 'eq':
          return l === r;
        case 'ne':
          return l !== r;
        case 'gt':
          return l > r;
        case 'ge':
          return l >= r;
        case 'lt':
          return l < r;
        case 'le':
          return l <= r;
      }
    }
  }
}

export function reference(program: KafelProgram, arch: KafelArch, d: SeccompData): number {
  if (d.arch >>> 0 !== AUDIT_ARCH[arch]) return RET.KILL_PROCESS;
  const nr = d.nr >>> 0;
  if (arch === 'x86_64' && nr >= 0x40000000) return RET.KILL_PROCESS;
  const args = d.args ?? [];
  for (const rule of flattenRules(program, program.main)) {
    for (const f of rule.filters) {
      if (!appliesOn(f, arch)) continue;
      const fnr =
        f.syscall.name !== undefined ? lookupSyscall(arch, f.syscall.name)!.nr : f.syscall.nr!;
      if (fnr !== nr) continue;
      if (f.expr && !holds(simplify(lower(f.expr, filterArgs(f, arch))!), args)) continue;
      return actionValue(rule.action);
    }
  }
  return actionValue(program.defaultAction);
}

/** A small deterministic PRNG (mulberry32), so generated policies are reproducible from a seed. */
export function prng(seed: number): () => number {
  let s = seed | 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CALLS: Record<string, string[]> = {
  read: ['fd', 'buf', 'count'],
  write: ['fd', 'buf', 'count'],
  close: ['fd'],
  mmap: ['addr', 'len', 'prot', 'flags', 'fd', 'off'],
  socket: ['family', 'type', 'protocol'],
  ioctl: ['fd', 'cmd', 'arg'],
  kill: ['pid', 'sig'],
  prctl: ['option', 'arg2', 'arg3'],
  newuname: ['name'],
  execve: [],
  'SYSCALL[1000](a, b, c)': ['a', 'b', 'c'],
  'SYSCALL[0xffffffff](a)': ['a'],
  'SYSCALL[0x40000001]': [],
  MINE: [],
};
const NUMBERS = [
  '0',
  '1',
  '2',
  '3',
  '0x10',
  '0xffffffff',
  '0x100000000',
  '0x100000001',
  '-1',
  '017',
  '0b101',
  '65535',
  '0x8000000000000000',
  'K',
  '0xff00ff00ff00ff00',
];
const ACTIONS = [
  'ALLOW',
  'LOG',
  'KILL',
  'DENY',
  'KILL_PROCESS',
  'USER_NOTIF',
  'ERRNO(1)',
  'ERRNO(13)',
  'TRAP(2)',
  'TRACE(3)',
];

/** A random valid policy (names exist on both architectures), from a seed. */
export function randomPolicy(seed: number): string {
  const rnd = prng(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
  let args: string[] = [];
  const val = (d: number): string => {
    const r = rnd();
    if (d > 2 || r < 0.55) return args.length > 0 && rnd() < 0.55 ? pick(args) : pick(NUMBERS);
    if (r < 0.7) return `(${val(d + 1)})`;
    return `${val(d + 1)} ${pick(['&', '|'])} ${val(d + 1)}`;
  };
  const cond = (d: number): string => {
    const r = rnd();
    if (d > 2 || r < 0.5) return `${val(d)} ${pick(['==', '!=', '<', '<=', '>', '>='])} ${val(d)}`;
    if (r < 0.6) return `!(${cond(d + 1)})`;
    if (r < 0.65) return `(${cond(d + 1)})`;
    return `${cond(d + 1)} ${pick(['&&', '||', ','])} ${cond(d + 1)}`;
  };
  const filter = (): string => {
    const call = pick(Object.keys(CALLS));
    args = CALLS[call]!;
    let f = call;
    if (rnd() < 0.1) f += ` ON ${pick(['x86_64', 'aarch64'])}`;
    if (args.length > 0 && rnd() < 0.6) f += ` { ${cond(0)} }`;
    return f;
  };
  const block = () =>
    `${pick(ACTIONS)} { ${Array.from({ length: 1 + Math.floor(rnd() * 4) }, filter).join(', ')} }`;
  const parts = ['#define K 7', '#define MINE 0x3fffffff'];
  const withPolicy = rnd() < 0.4;
  if (withPolicy) parts.push(`POLICY p { ${block()}, ${block()} }`);
  const n = 1 + Math.floor(rnd() * 4);
  for (let i = 0; i < n; i++) parts.push(withPolicy && rnd() < 0.25 ? 'USE p' : block());
  if (rnd() < 0.7) parts.push(`DEFAULT ${pick(ACTIONS)}`);
  return parts.join('\n');
}

/** Inputs worth trying against a program: the numbers it names and their neighbours, edge arguments. */
export function probes(arch: KafelArch, seed: number, count: number): SeccompData[] {
  const rnd = prng(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
  const nrs = [0, 1, 2, 1000, 999, 1001, 0x3fffffff, 0x40000000, 0x40000001, 0xffffffff];
  for (const c of Object.keys(CALLS)) {
    const n = lookupSyscall(arch, c)?.nr;
    if (n !== undefined) nrs.push(n, n - 1, n + 1);
  }
  const edges = [
    0n,
    1n,
    2n,
    3n,
    7n,
    13n,
    15n,
    16n,
    65535n,
    0xffffffffn,
    0x100000000n,
    0x100000001n,
    0x8000000000000000n,
    0xff00ff00ff00ff00n,
    (1n << 64n) - 1n,
  ];
  const arg = () =>
    rnd() < 0.8
      ? pick(edges)
      : (BigInt(Math.floor(rnd() * 2 ** 32)) << 32n) | BigInt(Math.floor(rnd() * 2 ** 32));
  return Array.from({ length: count }, () => ({
    nr: pick(nrs),
    arch:
      rnd() < 0.95 ? AUDIT_ARCH[arch] : pick([0x40000003, AUDIT_ARCH.x86_64, AUDIT_ARCH.aarch64]),
    args: Array.from({ length: 6 }, arg),
  }));
}
