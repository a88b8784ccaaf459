/**
 * A classic-BPF interpreter with seccomp's data layout (nr at 0, arch at 4, instruction pointer
 * at 8, args at 16 + 8*i, little-endian), and the checks the kernel makes before accepting a
 * filter (bpf_check_classic + seccomp_check_filter), to run compiled filters in tests.
 */
import type { SockFilter } from '../../src/kafel/bpf';

export interface SeccompData {
  nr: number;
  arch: number;
  ip?: bigint;
  args?: readonly bigint[];
}

const SECCOMP_DATA_SIZE = 64;
const MEMWORDS = 16;

const cls = (code: number) => code & 0x07;
const isJump = (code: number) => cls(code) === 0x05;

/** The kernel's verdict on a filter: undefined when it would load it, else why not. */
export function verify(prog: readonly SockFilter[]): string | undefined {
  if (prog.length === 0 || prog.length > 4096) return `length ${prog.length}`;
  const allowed = new Set([
    0x20, 0x00, 0x01, 0x60, 0x61, 0x02, 0x03, 0x07, 0x87, 0x06, 0x16, 0x05, 0x15, 0x25, 0x35, 0x45,
    0x1d, 0x2d, 0x3d, 0x4d, 0x04, 0x0c, 0x14, 0x1c, 0x24, 0x2c, 0x34, 0x3c, 0x44, 0x4c, 0x54, 0x5c,
    0x64, 0x6c, 0x74, 0x7c, 0x84, 0xa4, 0xac, 0x94, 0x9c,
  ]);
  // What scratch words are written on every path into each instruction (the kernel refuses reads of others).
  const written: (number | undefined)[] = new Array(prog.length).fill(undefined);
  written[0] = 0;
  for (let i = 0; i < prog.length; i++) {
    const f = prog[i]!;
    if (!allowed.has(f.code)) return `${i}: opcode 0x${f.code.toString(16)} not allowed in seccomp`;
    if (f.code === 0x20 && (f.k % 4 !== 0 || f.k >= SECCOMP_DATA_SIZE))
      return `${i}: load outside seccomp_data (${f.k})`;
    if ([0x60, 0x61, 0x02, 0x03].includes(f.code) && f.k >= MEMWORDS)
      return `${i}: scratch word ${f.k}`;
    const w = written[i];
    if (w === undefined) continue; // unreachable
    if ((f.code === 0x60 || f.code === 0x61) && !(w & (1 << f.k)))
      return `${i}: reads M[${f.k}] before any write`;
    const out = f.code === 0x02 || f.code === 0x03 ? w | (1 << f.k) : w;
    const flow = (to: number): string | undefined => {
      if (to >= prog.length) return `${i}: jumps past the end`;
      written[to] = written[to] === undefined ? out : written[to]! & out;
      return undefined;
    };
    let err: string | undefined;
    if (f.code === 0x06 || f.code === 0x16) continue;
    if (f.code === 0x05) err = flow(i + 1 + f.k);
    else if (isJump(f.code)) err = flow(i + 1 + f.jt) ?? flow(i + 1 + f.jf);
    else err = flow(i + 1);
    if (err) return err;
  }
  const last = prog[prog.length - 1]!;
  if (last.code !== 0x06 && last.code !== 0x16) return 'does not end with a return';
  return undefined;
}

export interface Run {
  ret: number;
  steps: number;
}

/** Runs a filter on one system call; throws where the kernel would never get. */
export function runFilterSteps(prog: readonly SockFilter[], d: SeccompData): Run {
  const data = new DataView(new ArrayBuffer(SECCOMP_DATA_SIZE));
  data.setUint32(0, d.nr >>> 0, true);
  data.setUint32(4, d.arch >>> 0, true);
  data.setBigUint64(8, BigInt.asUintN(64, d.ip ?? 0n), true);
  for (const [i, v] of (d.args ?? []).entries())
    data.setBigUint64(16 + 8 * i, BigInt.asUintN(64, v), true);
  const M = new Uint32Array(MEMWORDS);
  let A = 0;
  let X = 0;
  let pc = 0;
  for (let steps = 1; ; steps++) {
    const f = prog[pc];
    if (!f) throw new Error(`ran off the end at ${pc}`);
    const k = f.k >>> 0;
    const next = pc + 1;
    if (isJump(f.code)) {
      if (f.code === 0x05) {
        pc = next + k;
        continue;
      }
      const rhs = f.code & 0x08 ? X : k;
      const op = f.code & 0xf0;
      const ok =
        op === 0x10 ? A === rhs : op === 0x20 ? A > rhs : op === 0x30 ? A >= rhs : (A & rhs) !== 0;
      pc = next + (ok ? f.jt : f.jf);
      continue;
    }
    switch (f.code) {
      case 0x20:
        A = data.getUint32(k, true);
        break;
      case 0x00:
        A = k;
        break;
      case 0x01:
        X = k;
        break;
      case 0x60:
        A = M[k]!;
        break;
      case 0x61:
        X = M[k]!;
        break;
      case 0x02:
        M[k] = A;
        break;
      case 0x03:
        M[k] = X;
        break;
      case 0x07:
        X = A;
        break;
      case 0x87:
        A = X;
        break;
      case 0x06:
        return { ret: k, steps };
      case 0x16:
        return { ret: A >>> 0, steps };
      default: {
        if (cls(f.code) !== 0x04) throw new Error(`opcode 0x${f.code.toString(16)} at ${pc}`);
        const rhs = f.code & 0x08 ? X : k;
        const ops: Record<number, (a: number, b: number) => number> = {
          0: (a, b) => a + b,
          16: (a, b) => a - b,
          32: (a, b) => Math.imul(a, b),
          48: (a, b) => (b === 0 ? 0 : Math.floor(a / b)),
          64: (a, b) => a | b,
          80: (a, b) => a & b,
          96: (a, b) => a << (b & 31),
          112: (a, b) => a >>> (b & 31),
          128: (a) => -a,
          144: (a, b) => (b === 0 ? 0 : a % b),
          160: (a, b) => a ^ b,
        };
        A = ops[f.code & 0xf0]!(A, rhs) >>> 0;
      }
    }
    pc = next;
  }
}

export function runFilter(prog: readonly SockFilter[], d: SeccompData): number {
  return runFilterSteps(prog, d).ret;
}
