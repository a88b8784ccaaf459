import type { BuildkitAddress } from './address';
import type { BuildkitConnection, ConnectOptions } from './connect';
import { connectNamed, type DiscoverOptions, discover } from './discover';

export {
  type BuildkitAddress,
  DEFAULT_BUILDKITD_SOCKET,
  DEFAULT_DOCKER_SOCKET,
  type EngineAddress,
  formatAddress,
  parseAddress,
} from './address';
export {
  type BuildkitConnection,
  type BuildkitVersionInfo,
  type ConnectOptions,
  connectTo,
  formatPlatform,
  type WorkerInfo,
} from './connect';
export {
  type Candidate,
  candidates,
  connectNamed,
  type DiscoverOptions,
  discover,
  namedCandidate,
} from './discover';
export {
  type ContextChoice,
  chosenContext,
  type DockerContext,
  readDockerContext,
} from './docker-context';
export {
  apiAtLeast,
  checkMultipleExporters,
  describeEngine,
  engineApiVersion,
  engineVersions,
} from './engine-ping';
export {
  type EnginePushOptions,
  type EnginePushResult,
  pushThroughEngine,
  registryAuthHeader,
} from './engine-push';
export type { SessionHandshake } from './session-headers';
export { connectForSession, type SessionConnection } from './session-only';
export {
  checkTlsFlags,
  dockerConfigDir,
  dockerDirTls,
  dockerEnvTls,
  flagsTls,
  hasTlsFlags,
  type TlsFlags,
  type TlsOptions,
} from './tls';

/**
 * Connects to `address`, or, when it is undefined, to the first builder discovery finds
 * (BUILDKIT_HOST, DOCKER_HOST, default buildkitd socket, default Docker socket).
 */
export function connect(
  address?: string | BuildkitAddress | undefined,
  opts: ConnectOptions & DiscoverOptions = {},
): Promise<BuildkitConnection> {
  return address === undefined ? discover(opts) : connectNamed(address, opts);
}
