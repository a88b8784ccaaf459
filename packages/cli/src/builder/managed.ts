/**
 * The ktl-managed builder: a `buildkitd` or `dockerd` found on PATH, started on a private
 * socket under ktl's state directory, found by `ktl build` without any variable set.
 *
 * Layout (`<state>` is $KTL_STATE_DIR, else $XDG_STATE_HOME/ktl, else ~/.local/state/ktl):
 *   <state>/builder/engine.sock   the API socket
 *   <state>/builder/builder.json  what is running (engine, pid, address, bridge)
 *   <state>/builder/engine.log    the engine's own log
 *   <state>/builder/data          its images and build cache (kept across restarts)
 *
 * A dockerd gets a bridge of its own (default `ktl0`, 10.213.0.1/24) so it can run next to
 * another engine on the same machine without fighting over docker0, its own containerd
 * namespace, and an exec root short enough for the unix sockets nested inside it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { connect } from '@ktl/buildkit-client';

export type EngineKind = 'dockerd' | 'buildkitd';

export interface ManagedBuilder {
  readonly engine: EngineKind;
  readonly binary: string;
  readonly pid: number;
  /** What `--builder` / BUILDKIT_HOST would say: `docker://unix://...` or `unix://...`. */
  readonly address: string;
  readonly socket: string;
  readonly dir: string;
  readonly log: string;
  readonly bridge?: { readonly name: string; readonly cidr: string; readonly created: boolean };
  readonly startedAt: string;
}

/** Exit statuses of `ktl builder ...` (stable). */
export const BuilderExit = {
  OK: 0,
  USAGE: 2,
  NO_ENGINE: 3,
  START_FAILED: 4,
  NOT_ROOT: 5,
} as const;

export class BuilderError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly hint: string,
  ) {
    super(message);
    this.name = 'BuilderError';
  }
}

type Env = Readonly<Record<string, string | undefined>>;

export function stateDir(env: Env = process.env): string {
  if (env.KTL_STATE_DIR) return env.KTL_STATE_DIR;
  return join(env.XDG_STATE_HOME || join(env.HOME || homedir(), '.local', 'state'), 'ktl');
}

export const builderDir = (env: Env = process.env) => join(stateDir(env), 'builder');
const stateFile = (dir: string) => join(dir, 'builder.json');

/** `pid` runs `comm`, and (when given) its command line mentions `needle` (our socket). */
function alive(pid: number, comm: string, needle?: string): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    // EPERM: alive but someone else's; not ours to claim.
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== comm) return false;
    return needle === undefined || readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(needle);
  } catch {
    return false;
  }
}

/** The running ktl-managed builder, or undefined (a stale state file is ignored). */
export function readManagedBuilder(env: Env = process.env): ManagedBuilder | undefined {
  let st: ManagedBuilder;
  try {
    st = JSON.parse(readFileSync(stateFile(builderDir(env)), 'utf8')) as ManagedBuilder;
  } catch {
    return undefined;
  }
  return typeof st.pid === 'number' && alive(st.pid, st.engine, st.socket) ? st : undefined;
}

export const START_HINT =
  '`sudo ktl builder start` starts a ktl-managed engine (buildkitd or dockerd from PATH) that ktl build then finds';

/** Discovery candidates for `ktl build`: the managed builder when one is running. */
export function managedCandidates(env: Env = process.env): { source: string; address: string }[] {
  const b = readManagedBuilder(env);
  return b ? [{ source: `ktl builder (${b.engine}, ktl builder start)`, address: b.address }] : [];
}

function onPath(name: string, env: Env): string | undefined {
  for (const d of (env.PATH ?? '').split(delimiter)) {
    if (!d) continue;
    const p = join(d, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

export interface StartOptions {
  readonly env?: Env;
  /** Which engine; `auto` takes buildkitd when on PATH, else dockerd. */
  readonly engine?: EngineKind | 'auto';
  readonly bridgeName?: string;
  readonly bridgeCidr?: string;
  readonly timeoutMs?: number;
  readonly log?: (line: string) => void;
}

const BRIDGE_NAME = /^[a-zA-Z][a-zA-Z0-9_-]{0,14}$/;
const CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;

function tail(file: string, n = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
  } catch {
    return '(no log)';
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

/** Starts the managed builder, or returns the one already running. */
export async function startManagedBuilder(
  opts: StartOptions = {},
): Promise<{ builder: ManagedBuilder; alreadyRunning: boolean }> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? (() => {});
  const running = readManagedBuilder(env);
  if (running) return { builder: running, alreadyRunning: true };

  const bridgeName = opts.bridgeName ?? 'ktl0';
  const bridgeCidr = opts.bridgeCidr ?? '10.213.0.1/24';
  if (!BRIDGE_NAME.test(bridgeName)) {
    throw new BuilderError(
      `--bridge-name ${bridgeName}: not a valid interface name (1-15 of a-z, 0-9, _ and -)`,
      BuilderExit.USAGE,
      'e.g. --bridge-name ktl0',
    );
  }
  const m = CIDR.exec(bridgeCidr);
  if (!m || m.slice(1, 5).some((o) => Number(o) > 255) || Number(m[5]) > 30) {
    throw new BuilderError(
      `--bridge-cidr ${bridgeCidr}: expected the bridge's address with a prefix, e.g. 10.213.0.1/24`,
      BuilderExit.USAGE,
      'the address is the gateway RUN steps see; the prefix sizes their subnet',
    );
  }

  const want = opts.engine ?? 'auto';
  const found: Record<EngineKind, string | undefined> = {
    buildkitd: onPath('buildkitd', env),
    dockerd: onPath('dockerd', env),
  };
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
      `${engine} needs root (ktl runs it rootful, uid ${process.getuid()} here)`,
      BuilderExit.NOT_ROOT,
      'run `sudo ktl builder start`, or point BUILDKIT_HOST / DOCKER_HOST at a builder you can use',
    );
  }

  const dir = builderDir(env);
  const socket = join(dir, 'engine.sock');
  if (socket.length > 100) {
    throw new BuilderError(
      `the socket path ${socket} is too long for a unix socket (${socket.length} > 100 bytes)`,
      BuilderExit.USAGE,
      'set KTL_STATE_DIR to a shorter directory',
    );
  }
  mkdirSync(join(dir, 'data'), { recursive: true, mode: 0o700 });
  rmSync(socket, { force: true });
  const logFile = join(dir, 'engine.log');
  const pidFile = join(dir, 'engine.pid');
  rmSync(pidFile, { force: true });
  // dockerd nests containerd's sockets under its exec root: keep that path short.
  const execRoot =
    join(dir, 'x').length > 40
      ? `/run/ktl-builder-${createHash('sha256').update(dir).digest('hex').slice(0, 8)}`
      : join(dir, 'x');

  let args: string[];
  let address: string;
  let bridge: ManagedBuilder['bridge'];
  if (engine === 'dockerd') {
    const created = ensureBridge(bridgeName, bridgeCidr);
    bridge = { name: bridgeName, cidr: bridgeCidr, created };
    const config = join(dir, 'daemon.json');
    writeFileSync(
      config,
      `${JSON.stringify({ features: { 'containerd-snapshotter': true }, bridge: bridgeName })}\n`,
    );
    args = [
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
    ];
    address = `docker://unix://${socket}`;
  } else {
    args = ['--addr', `unix://${socket}`, '--root', join(dir, 'data')];
    address = `unix://${socket}`;
  }

  log(`starting ${binary} ${args.join(' ')}`);
  const fd = openSync(logFile, 'a');
  writeFileSync(fd, `\n==== ${new Date().toISOString()} ktl builder start\n`);
  const child = spawn(binary, args, { detached: true, stdio: ['ignore', fd, fd], env: { ...env } });
  closeSync(fd);
  let exited: string | undefined;
  child.on('exit', (code, sig) => {
    exited = sig ? `signal ${sig}` : `status ${code}`;
  });
  child.on('error', (e) => {
    exited = e.message;
  });
  child.unref();

  const failStart = (why: string): never => {
    if (child.pid !== undefined && exited === undefined) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {}
    }
    if (bridge?.created) spawnSync('ip', ['link', 'del', bridge.name], { stdio: 'ignore' });
    throw new BuilderError(
      `${engine} did not start: ${why}\n--- last lines of ${logFile}\n${tail(logFile)}`,
      BuilderExit.START_FAILED,
      `see ${logFile}`,
    );
  };

  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  for (;;) {
    if (exited !== undefined) failStart(`it exited (${exited})`);
    if (existsSync(socket)) {
      try {
        const conn = await connect(address, { env: {} });
        await conn.close();
        break;
      } catch {}
    }
    if (Date.now() > deadline)
      failStart(`no answer on ${socket} within ${opts.timeoutMs ?? 60_000} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }

  const builder: ManagedBuilder = {
    engine,
    binary,
    pid: child.pid!,
    address,
    socket,
    dir,
    log: logFile,
    ...(bridge ? { bridge } : {}),
    startedAt: new Date().toISOString(),
  };
  writeFileSync(stateFile(dir), `${JSON.stringify(builder, null, 2)}\n`);
  return { builder, alreadyRunning: false };
}

/** Stops the managed builder; false when none was running. Its data is kept. */
export async function stopManagedBuilder(
  opts: { env?: Env; timeoutMs?: number; log?: (line: string) => void } = {},
): Promise<ManagedBuilder | undefined> {
  const env = opts.env ?? process.env;
  const dir = builderDir(env);
  const b = readManagedBuilder(env);
  if (b) {
    process.kill(b.pid, 'SIGTERM');
    const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
    while (alive(b.pid, b.engine) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    if (alive(b.pid, b.engine)) {
      opts.log?.(`${b.engine} (pid ${b.pid}) ignored SIGTERM; killing it`);
      process.kill(b.pid, 'SIGKILL');
      while (alive(b.pid, b.engine)) await new Promise((r) => setTimeout(r, 50));
    }
    if (b.bridge?.created) spawnSync('ip', ['link', 'del', b.bridge.name], { stdio: 'ignore' });
  }
  rmSync(stateFile(dir), { force: true });
  rmSync(join(dir, 'engine.sock'), { force: true });
  return b;
}
