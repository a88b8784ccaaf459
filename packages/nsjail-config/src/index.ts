export { emitPolicy, assertPolicy } from './emit';
export { PolicyError, type PolicyErrorCode, type SourcePosition } from './errors';
export { parsePolicy, parsePolicyFile, type ParsedPolicy, type ParseOptions } from './parse';
export type { EnumDescriptor, FieldDescriptor, MessageDescriptor } from './schema/builders';
export {
  NSJAIL_REVISION,
  policyDescriptor,
  policySchema,
  type Exe,
  type IdMap,
  type MountPt,
  type NsJailConfig,
  type NstunRule,
  type RLimitType,
  type TrafficRule,
  type UserNet,
} from './schema/nsjail';
export type { FieldSpan, PolicySource } from './source';
export { formatPolicy } from './format';
export { lintPolicy } from './lint';
export { type Diagnostic, formatDiagnostic, type Severity } from './diagnostics';
export { effective } from './defaults';
