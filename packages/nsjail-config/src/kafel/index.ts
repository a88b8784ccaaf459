export type {
  Action,
  ActionKind,
  Expr,
  KafelError,
  KafelProgram,
  Policy,
  PolicyEntry,
  Span,
  SyscallFilter,
  SyscallRef,
} from './ast';
export { describeAction, describeExpr, describeKafel, flattenRules } from './describe';
export { type ParseKafelOptions, type ParseKafelResult, parseKafel } from './parser';
export {
  hostKafelArch,
  type KafelArch,
  lookupSyscall,
  type SyscallArg,
  type SyscallInfo,
  suggestSyscall,
  syscallByNumber,
  syscallNames,
} from './syscalls';
