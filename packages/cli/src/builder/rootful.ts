/**
 * The rootful managed engine (`ktl builder start --rootful`): a buildkitd or dockerd from PATH
 * run as root on a private socket. A dockerd gets its own bridge and containerd namespace so
 * it runs next to another engine without touching docker0.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BuilderError, BuilderExit } from './errors';
import { onPath } from './rootless-preflight';

type Env = Readonly<Record<string, string | undefined>>;
export type EngineKind = 'dockerd' | 'buildkitd';

const BRIDGE_NAME = /^[a-zA-Z][a-zA-Z0-9_-]{0,14}$/;
const CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;

export interface Bridge {
  readonly name: string;
  readonly cidr: string;
  readonly created: boolean;
}

export interface RootfulPlan {
  readonly engine: EngineKind;
  readonly binary: string;
  readonly args: string[];
  readonly address: string;
  readonly socket: string;
  readonly bridge?: Bridge;
}

export function validateBridge(name: string, cidr: string): void {
  if (!BRIDGE_NAME.test(name)) {
    throw new BuilderError(
      `--bridge-name ${name}: not a valid interface name (1-15 of a-z, 0-9, _ and -)`,
      BuilderExit.USAGE,
      'e.g. --bridge-name ktl0',
    );
  }
  const m = CIDR.exec(cidr);
  if (!m || m.slice(1, 5).some((o) => Number(o) > 255) || Number(m[5]) > 30) {
    throw new BuilderError(
      `--bridge-cidr ${cidr}: expected the bridge's address with a prefix, e.g. 10.213.0.1/24`,
      BuilderExit.USAGE,
      'the address is the gateway RUN steps see; the prefix sizes their subnet',
    );
  }
}

function ensureBridge(name: string, cidr: string): boolean {
  if (spawnSync('ip', ['link', 'show', name], { stdio: 'ignore' }).status === 0) return false;
  const steps = [
    ['link', 'add', name, 'type', 'bridge'],
    ['addr', 'add', cidr, 'dev', name],
    ['link', 'set', name, 'up'],
  ];
  for (const args of steps) {
    const r = spawnSync('ip', args, { encoding: 'utf8' });
    if (r.error || r.status !== 0) {
      spawnSync('ip', ['link', 'del', name], { stdio: 'ignore' });
      throw new BuilderError(
        `cannot create the bridge ${name} (ip ${args.join(' ')}): ${r.error?.message ?? r.stderr.trim()}`,
        BuilderExit.START_FAILED,
        'install iproute2, or pick another --bridge-name / --bridge-cidr',
      );
    }
  }
  return true;
}

export function deleteBridge(b: Bridge | undefined): void {
  if (b?.created) spawnSync('ip', ['link', 'del', b.name], { stdio: 'ignore' });
}

/** Finds the engine, checks ktl is root, and prepares its directory (and dockerd's bridge). */
export function planRootful(opts: {
  env: Env;
  dir: string;
  engine: EngineKind | 'auto';
  bridgeName: string;
  bridgeCidr: string;
}): RootfulPlan {
  const { env, dir } = opts;
  const found: Record<EngineKind, string | undefined> = {
    buildkitd: onPath('buildkitd', env),
    dockerd: onPath('dockerd', env),
  };
  const want = opts.engine;
  const engine: EngineKind | undefined =
    want === 'auto'
      ? found.buildkitd
        ? 'buildkitd'
        : found.dockerd
          ? 'dockerd'
          : undefined
      : want;
  const binary = engine ? found[engine] : undefined;
  if (!engine || !binary) {
    throw new BuilderError(
      want === 'auto'
        ? 'neither buildkitd nor dockerd is on PATH'
        : `${want} is not on PATH (${env.PATH ?? ''})`,
      BuilderExit.NO_ENGINE,
      'install one (Debian: apt-get install docker.io), or point BUILDKIT_HOST / DOCKER_HOST at a running builder',
    );
  }
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new BuilderError(
      `${engine} needs root (--rootful runs it as root, uid ${process.getuid()} here)`,
      BuilderExit.NOT_ROOT,
      'run `sudo ktl builder start --rootful`, or drop --rootful for a rootless engine run as you',
    );
  }
  const socket = join(dir, 'engine.sock');
  if (socket.length > 100) {
    throw new BuilderError(
      `the socket path ${socket} is too long for a unix socket (${socket.length} > 100 bytes)`,
      BuilderExit.USAGE,
      'set KTL_STATE_DIR to a shorter directory',
    );
  }
  mkdirSync(join(dir, 'data'), { recursive: true, mode: 0o700 });
  const pidFile = join(dir, 'engine.pid');
  rmSync(pidFile, { force: true });
  if (engine === 'buildkitd') {
    return {
      engine,
      binary,
      args: ['--addr', `unix://${socket}`, '--root', join(dir, 'data')],
      address: `unix://${socket}`,
      socket,
    };
  }
  // dockerd nests containerd's sockets under its exec root: keep that path short.
  const execRoot =
    join(dir, 'x').length > 40
      ? `/run/ktl-builder-${createHash('sha256').update(dir).digest('hex').slice(0, 8)}`
      : join(dir, 'x');
  const created = ensureBridge(opts.bridgeName, opts.bridgeCidr);
  const config = join(dir, 'daemon.json');
  writeFileSync(
    config,
    `${JSON.stringify({ features: { 'containerd-snapshotter': true }, bridge: opts.bridgeName })}\n`,
  );
  return {
    engine,
    binary,
    args: [
      '--host',
      `unix://${socket}`,
      '--data-root',
      join(dir, 'data'),
      '--exec-root',
      execRoot,
      '--pidfile',
      pidFile,
      '--config-file',
      config,
      '--containerd-namespace',
      'ktl',
      '--containerd-plugins-namespace',
      'ktl-plugins',
    ],
    address: `docker://unix://${socket}`,
    socket,
    bridge: { name: opts.bridgeName, cidr: opts.bridgeCidr, created },
  };
}
