/** kafel, the seccomp policy language nsjail embeds: parse, check, explain and compile to BPF. */
export type {
  Action,
  ActionKind,
  BinaryExpr,
  BitOp,
  CompareOp,
  Expr,
  IdentExpr,
  KafelError,
  KafelErrorCode,
  KafelProgram,
  LogicOp,
  NotExpr,
  NumberExpr,
  Policy,
  PolicyEntry,
  Span,
  SyscallFilter,
  SyscallRef,
} from './ast';
export {
  AUDIT_ARCH,
  actionValue,
  compile,
  compileKafel,
  describeRet,
  disassemble,
  explain,
  KafelCompileError,
  RET,
  type SockFilter,
  serialize,
} from './bpf';
export {
  type DescribeKafelOptions,
  describeAction,
  describeExpr,
  describeKafel,
  flattenRules,
  isX32Filter,
} from './describe';
export { tokenize } from './lexer';
export { type ParseKafelOptions, type ParseKafelResult, parseKafel } from './parser';
export {
  closestSyscalls,
  hostKafelArch,
  KAFEL_ARCHES,
  type KafelArch,
  kafelSpelling,
  lookupSyscall,
  type SyscallArg,
  type SyscallInfo,
  suggestSyscall,
  syscallByNumber,
  syscallNames,
} from './syscalls';
