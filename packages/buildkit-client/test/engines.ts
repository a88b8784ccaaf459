/**
 * The engines the integration suites run against, each registered with `describe.each`:
 * - the rig (scripts/rig.sh): Docker 26.1, embedded BuildKit v0.13, containerd image store;
 * - the compatibility engine (scripts/rig-compat.sh): Debian bookworm's Docker 20.10,
 *   BuildKit v0.8 on a graphdriver store. It uses the rig's registry and base image.
 * - the rootless engine (scripts/rig-rootless.sh): Docker 26.1 in rootless mode, started by
 *   `ktl builder start` as root (so run as ktl-builder), the base image loaded into it. Not in
 *   testEngines(): the suites that run on it ask for it (rootlessEngine()).
 * An engine that does not answer has every case registered as skipped, with the reason. A
 * case needing what an engine lacks is skipped there with the engine limit in its name
 * (`gate`), computed when the test is registered; what ktl does instead (refuse before the
 * build, exit 2, the engine named) is tested in packages/cli/test/compat-engine.test.ts.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as net from 'node:net';
import { test } from '@jest/globals';

export type EngineId = 'rig' | 'compat' | 'rootless';

export interface TestEngine {
  readonly id: EngineId;
  /** For describe.each titles: `Docker 26.1 (rig)`, `Docker 20.10 (compat)`, `Docker 26.1 rootless`. */
  readonly label: string;
  /** `unix:///...`; empty when the engine is not set up. */
  readonly dockerHost: string;
  /** The engine's own docker CLI (20.10's talks API 1.41). */
  readonly dockerCli: string;
  /** Engine version and API, as its env file records them (`20.10.24+dfsg1`, `1.41`). */
  readonly version: string | undefined;
  readonly api: string | undefined;
  /** The rig's loopback registry and offline base image (both engines use them). */
  readonly registry: string;
  readonly baseImage: string;
  /** docker-buildx (the reference client) and its DOCKER_CONFIG. */
  readonly buildx: string | undefined;
  readonly dockerConfig: string | undefined;
  /** '' when the engine answers, else ` [skipped: WHY]`. */
  readonly down: string;
}

/** What a case may need that not every engine has. */
export type Feature =
  | 'image-archives'
  | 'several-outputs'
  | 'registry-cache-export'
  | 'named-contexts'
  | 'control-info'
  | 'source-locations'
  | 'buildx-multi-platform';

/** Features ktl refuses up front where they are missing (tested in compat-engine.test.ts). */
const REFUSED: ReadonlySet<Feature> = new Set([
  'image-archives',
  'several-outputs',
  'registry-cache-export',
  'named-contexts',
]);

/** What each engine lacks, and why: facts of Docker 20.10 / BuildKit v0.8 on a graphdriver. */
const LACKS: Record<EngineId, Partial<Record<Feature, string>>> = {
  rig: {},
  // It cannot reach the rig's registry on the host's 127.0.0.1 (host loopback disabled): its
  // base image is loaded into it, and no suite pushes or pulls there.
  rootless: {},
  compat: {
    'image-archives': 'its graphdriver store has no oci or docker exporter',
    'several-outputs': 'BuildKit v0.8 exports one output per build',
    'registry-cache-export': 'its graphdriver builder exports cache only inline',
    'named-contexts': 'its Dockerfile frontend has no named contexts (--build-context)',
    'control-info': 'BuildKit v0.8 has no Control.Info (added in v0.11)',
    'source-locations': 'BuildKit v0.8 sends no Dockerfile source locations with errors',
    // The reference client's limit, not the engine's: ktl's multi-platform local export there
    // is tested in packages/cli/test/compat-engine.test.ts.
    'buildx-multi-platform':
      'docker buildx refuses multi-platform builds on a graphdriver engine (docker driver without the containerd image store), so there is nothing to compare with',
  },
};

const RIG_ENV = process.env.KTL_RIG_ENV_FILE ?? '/var/lib/ktl-rig/env';
const COMPAT_ENV = process.env.KTL_RIG_COMPAT_ENV_FILE ?? '/var/lib/ktl-rig/env-compat';
const ROOTLESS_ENV = process.env.KTL_RIG_ROOTLESS_ENV_FILE ?? '/var/lib/ktl-rig/env-rootless';

function readEnv(file: string): Record<string, string> {
  if (!existsSync(file)) return {};
  const out: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^\s*(?:export\s+)?([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!.trim().replace(/^(["'])(.*)\1$/, '$2');
  }
  return out;
}

/** Whether something answers `GET /_ping` on the engine socket (a stale socket file does not). */
function ping(path: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = net.connect({ path });
    let head = '';
    const done = (why: string | undefined) => {
      s.destroy();
      resolve(why);
    };
    s.setTimeout(3000, () => done('timed out'));
    s.once('connect', () => s.write('GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n'));
    s.on('data', (d: Buffer) => {
      head += d.toString('latin1');
      if (head.includes('\r\n'))
        done(/^HTTP\/1\.1 200 /.test(head) ? undefined : head.split('\r\n')[0]);
    });
    s.once('error', (e) => done(e.message));
  });
}

let cached: Promise<TestEngine[]> | undefined;

/** Both engines, rig first; each says whether it is up. */
export function testEngines(): Promise<TestEngine[]> {
  cached ??= probe();
  return cached;
}

async function probe(): Promise<TestEngine[]> {
  const rig = readEnv(RIG_ENV);
  const compat = readEnv(COMPAT_ENV);
  const shared = {
    registry: rig.KTL_RIG_REGISTRY ?? '',
    baseImage: rig.KTL_RIG_BASE_IMAGE ?? '',
    buildx: rig.KTL_RIG_BUILDX,
    dockerConfig: rig.KTL_RIG_DOCKER_CONFIG,
  };
  const rigDown = async (): Promise<string> => {
    if (!rig.KTL_RIG_DOCKER_HOST) return `no rig in ${RIG_ENV}; run scripts/rig.sh up`;
    if (!shared.registry || !shared.baseImage)
      return `KTL_RIG_REGISTRY or KTL_RIG_BASE_IMAGE missing in ${RIG_ENV}`;
    const why = await ping(rig.KTL_RIG_DOCKER_HOST.replace('unix://', ''));
    return why ? `the rig engine ${rig.KTL_RIG_DOCKER_HOST} does not answer: ${why}` : '';
  };
  const compatDown = async (): Promise<string> => {
    if (!compat.KTL_RIG_COMPAT_DOCKER_HOST)
      return `the Docker 20.10 compatibility engine is not up (no ${COMPAT_ENV}); run scripts/rig-compat.sh up`;
    if (!shared.registry || !shared.baseImage)
      return `it builds from the rig's registry and base image, and ${RIG_ENV} names none`;
    const why = await ping(compat.KTL_RIG_COMPAT_DOCKER_HOST.replace('unix://', ''));
    return why
      ? `the Docker 20.10 compatibility engine does not answer (${why}); run scripts/rig-compat.sh up`
      : '';
  };
  const [r, c] = await Promise.all([rigDown(), compatDown()]);
  return [
    {
      id: 'rig',
      label: 'Docker 26.1 (rig)',
      dockerHost: rig.KTL_RIG_DOCKER_HOST ?? '',
      dockerCli: rig.KTL_RIG_DOCKER_CLI ?? 'docker',
      version: rig.KTL_RIG_ENGINE_VERSION,
      api: undefined,
      ...shared,
      down: r ? ` [skipped: ${r}]` : '',
    },
    {
      id: 'compat',
      label: 'Docker 20.10 (compat)',
      dockerHost: compat.KTL_RIG_COMPAT_DOCKER_HOST ?? '',
      dockerCli: compat.KTL_RIG_COMPAT_DOCKER_CLI ?? 'docker',
      version: compat.KTL_RIG_COMPAT_VERSION,
      api: compat.KTL_RIG_COMPAT_API,
      ...shared,
      down: c ? ` [skipped: ${c}]` : '',
    },
  ];
}

/** Why `e` cannot run a case needing `needs`, or undefined when it can. */
export function lacks(e: TestEngine, ...needs: Feature[]): string | undefined {
  const missing = needs.filter((f) => LACKS[e.id][f] !== undefined);
  if (missing.length === 0) return undefined;
  const refused = missing.some((f) => REFUSED.has(f))
    ? '; ktl refuses it up front there (compat-engine.test.ts)'
    : '';
  return `${missing.map((f) => LACKS[e.id][f]).join('; ')}${refused}`;
}

/**
 * `test` or `test.skip` for a case on `e` needing `needs`, and what to append to its name:
 * the engine being down, or what it lacks.
 */
export function gate(
  e: TestEngine,
  ...needs: Feature[]
): { test: typeof test | typeof test.skip; why: string } {
  if (e.down) return { test: test.skip, why: e.down };
  const lack = lacks(e, ...needs);
  if (lack) return { test: test.skip, why: ` [skipped on ${e.label}: ${lack}]` };
  return { test, why: '' };
}

let rootlessCached: Promise<TestEngine & { readonly stateDir: string }> | undefined;

/**
 * The rig's rootless engine. `stateDir` is the KTL_STATE_DIR it runs under: with it (and
 * BUILDKIT_HOST, DOCKER_HOST unset) `ktl build` finds it as the managed builder.
 */
export function rootlessEngine(): Promise<TestEngine & { readonly stateDir: string }> {
  rootlessCached ??= (async () => {
    const rl = readEnv(ROOTLESS_ENV);
    const rig = readEnv(RIG_ENV);
    const why = !rl.KTL_RIG_ROOTLESS_DOCKER_HOST
      ? `the rootless engine is not up (no ${ROOTLESS_ENV}); run scripts/rig-rootless.sh up`
      : await ping(rl.KTL_RIG_ROOTLESS_DOCKER_HOST.replace('unix://', '')).then((w) =>
          w ? `the rootless engine does not answer (${w}); run scripts/rig-rootless.sh up` : '',
        );
    return {
      id: 'rootless' as const,
      label: 'Docker 26.1 rootless',
      dockerHost: rl.KTL_RIG_ROOTLESS_DOCKER_HOST ?? '',
      dockerCli: rig.KTL_RIG_DOCKER_CLI ?? 'docker',
      version: rig.KTL_RIG_ENGINE_VERSION,
      api: undefined,
      registry: rig.KTL_RIG_REGISTRY ?? '',
      baseImage: rl.KTL_RIG_ROOTLESS_BASE_IMAGE ?? '',
      buildx: rig.KTL_RIG_BUILDX,
      dockerConfig: rig.KTL_RIG_DOCKER_CONFIG,
      down: why ? ` [skipped: ${why}]` : '',
      stateDir: rl.KTL_RIG_ROOTLESS_STATE_DIR ?? '',
    };
  })();
  return rootlessCached;
}
