/**
 * Which exporter stores an image in the builder's own image store. buildkitd and Docker
 * engines with the containerd image store have `image`; Docker engines on a graphdriver
 * (overlay2, ...) only have their own `moby` exporter and answer "exporter image not found".
 * The worker's labels tell the two engine kinds apart.
 */
import type { WorkerInfo } from './transport/connect';

export const WORKER_EXECUTOR_LABEL = 'org.mobyproject.buildkit.worker.executor';
export const MOBY_HOST_GATEWAY_LABEL = 'org.mobyproject.buildkit.worker.moby.host-gateway-ip';

export type ImageStoreKind = 'buildkitd' | 'docker-containerd' | 'docker-graphdriver';

export function imageStoreKind(address: string, workers: readonly WorkerInfo[]): ImageStoreKind {
  if (!address.startsWith('docker://')) return 'buildkitd';
  const w = workers[0];
  // The engine's containerd-backed worker runs steps through containerd; the graphdriver
  // worker through its own runc executor.
  return w?.labels[WORKER_EXECUTOR_LABEL] === 'containerd'
    ? 'docker-containerd'
    : 'docker-graphdriver';
}

/** The exporter name that stores (and with push=true pushes) an image on this builder. */
export function imageExporterName(kind: ImageStoreKind): 'image' | 'moby' {
  return kind === 'docker-graphdriver' ? 'moby' : 'image';
}
