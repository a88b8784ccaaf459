export { Assembler, BPF, MAX_INSNS, type SockFilter, serialize } from './asm';
export {
  AUDIT_ARCH,
  actionValue,
  type CompileOptions,
  compileKafel,
  KafelCompileError,
  RET,
  X32_SYSCALL_BIT,
} from './compile';
export { describeRet, disassemble } from './disasm';
