/**
 * @ktl/nsjail-config: nsjail policies as text or ProtoJSON -> a typed NsJailConfig -> canonical
 * text; validation against what nsjail refuses, lint, explain, kafel seccomp. The zod schema
 * and the JSON Schema are in @ktl/nsjail-config/schema, so that this entry never loads zod.
 */
export { type CheckResult, checkPolicyFile, errorDiagnostic } from './check';
export { effective } from './defaults';
export { type Diagnostic, formatDiagnostic, type Severity } from './diagnostics';
export { type Bind, withBinds, withEnv } from './edit';
export { assertPolicy, emitPolicy } from './emit';
export { PolicyError, type PolicyErrorCode, type SourcePosition } from './errors';
export {
  type ExplainOptions,
  type ExplainSection,
  explainPolicy,
  renderExplanation,
  type SeccompExplainer,
} from './explain';
export { formatPolicy } from './format';
export {
  type DescribeKafelOptions,
  describeKafel,
  hostKafelArch,
  type KafelArch,
  type KafelError,
  type KafelProgram,
  lookupSyscall,
  type ParseKafelResult,
  parseKafel,
  suggestSyscall,
  syscallNames,
} from './kafel';
export {
  compileKafel,
  disassemble,
  KafelCompileError,
  RET as SECCOMP_RET,
  type SockFilter,
  serialize as serializeBpf,
} from './kafel/bpf';
export { flattenRules as flattenKafelRules } from './kafel/describe';
export { lintPolicy } from './lint';
export { type ParsedPolicy, type ParseOptions, parsePolicy, parsePolicyFile } from './parse';
export type { EnumDescriptor, FieldDescriptor, MessageDescriptor } from './schema/builders';
export {
  type Exe,
  type IdMap,
  type MountPt,
  NSJAIL_REVISION,
  type NsJailConfig,
  type NstunRule,
  policyDescriptor,
  type RLimitType,
  type TrafficRule,
  type UserNet,
} from './schema/nsjail';
export { type SeccompText, seccompText } from './seccomp';
export type { FieldSpan, PolicySource } from './source';
export { CAPABILITIES, type ValidateOptions, validatePolicy } from './validate';
