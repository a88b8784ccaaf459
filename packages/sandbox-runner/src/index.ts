/**
 * @ktl/sandbox-runner: run any process under an nsjail policy with nsjail or bubblewrap,
 * failing closed. Depends only on node: builtins and @ktl/nsjail-config (no oclif, no gRPC).
 */
export {
  type FieldSupport,
  IDMAP_SUPPORT,
  MOUNT_SUPPORT,
  SUPPORT as BWRAP_SUPPORT,
  type SupportKind,
} from './bwrap-support';
export { defaultPolicy } from './default-policy';
export { type CgroupReport, type Check, type DoctorReport, doctor, type Probe } from './doctor';
export {
  type RunOutcome,
  type RuntimeName,
  SandboxError,
  type SandboxErrorCode,
} from './errors';
export type { LogsMode, RunBind, RunOptions, RuntimeChoice, StdioMode } from './options';
export { CONFIG_PLACEHOLDER, type FdPurpose, plan, type SandboxPlan } from './plan';
export { type RunResult, run, type SandboxProcess } from './run';
export {
  type DetectedRuntimes,
  detectRuntimes,
  type RuntimeInfo,
  resolveRuntime,
} from './runtimes';
