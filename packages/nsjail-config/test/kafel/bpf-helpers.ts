/** Shared by the BPF tests: parse, compile (checked as the kernel would), run one call. */
import { expect } from '@jest/globals';
import { type KafelArch, parseKafel } from '../../src/kafel';
import { AUDIT_ARCH, compileKafel, RET, type SockFilter } from '../../src/kafel/bpf';
import { lookupSyscall } from '../../src/kafel/syscalls';
import { runFilter, verify } from './bpf-vm';

export const X86 = AUDIT_ARCH.x86_64;
export const ARM = AUDIT_ARCH.aarch64;
export const nr = (name: string, arch: KafelArch = 'x86_64') => lookupSyscall(arch, name)!.nr;

export function parsed(src: string, arch: KafelArch = 'x86_64') {
  const r = parseKafel(src, { arch });
  if (!r.ok) throw new Error(`${r.error.line}:${r.error.column}: ${r.error.message}`);
  return r.program;
}

export function build(src: string, arch: KafelArch = 'x86_64'): SockFilter[] {
  const prog = compileKafel(parsed(src, arch), { arch });
  expect(verify(prog)).toBeUndefined();
  return prog;
}

export function verdict(
  src: string,
  call: string,
  args: bigint[] = [],
  arch: KafelArch = 'x86_64',
): number {
  return runFilter(build(src, arch), { nr: nr(call, arch), arch: AUDIT_ARCH[arch], args });
}

export const errno = (n: number) => (RET.ERRNO | n) >>> 0;
