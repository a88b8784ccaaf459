export const packageName = '@ktl/buildkit-client';

export {
  type CredentialStore,
  configKeyHost,
  type DockerConfigOptions,
  loadDockerConfig,
  type RegistryCredentials,
} from './auth/docker-config';
export {
  type EntitlementProbe,
  engineSecurityOptions,
  isRootlessEngine,
  probeEntitlements,
  RISKY_ENTITLEMENTS,
  type RiskyEntitlement,
} from './builder-risk';
export {
  BuildkitError,
  type BuildkitErrorCode,
  type BuildkitErrorDetail,
  type DiscoveryAttempt,
} from './errors';
export {
  type ImageStoreKind,
  imageExporterName,
  imageStoreKind,
} from './exporters';
export {
  AUTH_RELAY_TIMEOUT_MS,
  type AuthRelayOptions,
  authRelay,
} from './gateway/auth-endpoint';
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
export {
  type BuildHistoryRecord,
  buildRecord,
  encodeProvenance,
  goJson,
  type ProvenanceMetadataMode,
  provenanceDescriptor,
  provenanceMetadata,
  readBlob,
} from './history';
export {
  type ImageName,
  ImageNameError,
  isLoopbackRegistry,
  normalizeImageName,
  parseImageName,
} from './image-name';
export {
  type LocalImport,
  localCacheStoreId,
  readLayoutIndex,
  recordLocalCacheExport,
  resolveLocalCacheImport,
} from './local-cache';
export {
  describeFailure,
  type FailureReport,
  formatFailure,
  type SourceLocation,
  sourceExcerpt,
} from './progress/failure';
export {
  formatWarnings,
  PlainRenderer,
  type ProgressRenderer,
  QuietRenderer,
} from './progress/plain';
export { humanSize, ProgressTracker, type StepState } from './progress/tracker';
export {
  createRenderer,
  type ProgressMode,
  sanitizeLine,
  sanitizeText,
  type TtyOptions,
  TtyRenderer,
} from './progress/tty';
export {
  AUTH_METHODS,
  type AuthAnswerer,
  type AuthMethod,
  type CredentialAnswererOptions,
  credentialAnswerer,
} from './session/auth-service';
export type { ContentStoreSpec } from './session/content-service';
export type { ExportTarget } from './session/filesend';
export type { SyncProgress } from './session/filesync';
export { type Digest, parseDigest } from './session/oci-store';
export { BuildSession, newSessionId, type SessionOptions } from './session/session';
export {
  type CacheSpec,
  cacheOptions,
  type DockerfileBuildOptions,
  type ExportSpec,
  localCacheStores,
  type SolveResult,
  serveDockerfileSession,
  solveDockerfile,
} from './solve';
export {
  type FrontendOptions,
  frontendAttrs,
  isRemoteContext,
  type NetworkMode,
} from './solve-attrs';
export * from './transport/index';
export {
  CACHE_FILTER_KEYS,
  type CacheFilter,
  type CacheRecord,
  cacheFilter,
  type DiskUsageOptions,
  diskUsage,
  type PruneOptions,
  type PruneResult,
  parseDuration,
  parseSize,
  prune,
  summarizeUsage,
  type UsageSummary,
} from './usage';
