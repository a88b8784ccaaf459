export const packageName = '@ktl/buildkit-client';

export {
  BuildkitError,
  type BuildkitErrorCode,
  type BuildkitErrorDetail,
  type DiscoveryAttempt,
} from './errors';
export {
  type Gateway,
  type GatewayOptions,
  type SolvePolicy,
  solvePolicy,
  startGateway,
} from './gateway/gateway';
export type {
  StatusResponse,
  Vertex,
  VertexLog,
  VertexStatus,
  VertexWarning,
} from './gen/moby/buildkit/v1/control';
export type { ExportTarget } from './session/filesend';
export type { SyncProgress } from './session/filesync';
export { BuildSession, type SessionOptions } from './session/session';
export {
  type DockerfileBuildOptions,
  type ExportSpec,
  type SolveResult,
  solveDockerfile,
} from './solve';
export * from './transport/index';
