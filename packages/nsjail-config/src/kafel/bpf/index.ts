export {
  Assembler,
  BPF,
  deserialize,
  isConditionalJump,
  MAX_INSNS,
  MEMWORDS,
  type SockFilter,
  serialize,
} from './asm';
export {
  AUDIT_ARCH,
  actionValue,
  type CallRules,
  type CompileOptions,
  collectRules,
  compile,
  compileKafel,
  KafelCompileError,
  RET,
  X32_SYSCALL_BIT,
} from './compile';
export { describeRet, disassemble } from './disasm';
export { explain } from './explain';
