/**
 * The rootless managed engine: dockerd in Docker's rootless mode (dockerd-rootless.sh, which
 * runs it under rootlesskit with slirp4netns for its network and /etc and /run copied up), as
 * an unprivileged user. The daemon, and every RUN step, is then root only inside a user
 * namespace mapped onto that user's subordinate ids, and with host loopback disabled a step
 * granted `network.host` gets rootlesskit's network namespace, not the host's: the host's
 * 127.0.0.1 services are out of its reach.
 *
 * Where its files live:
 *   ktl as a user: everything under ktl's state directory, `<state>/builder/` (data/, engine.sock,
 *     daemon.json, r/ its runtime directory, engine.log), owned by the caller;
 *   ktl as root: the engine runs as the system user ktl-builder, which cannot reach root's
 *     state directory (/root is 0700): data/, engine.sock, daemon.json and r/ are in
 *     `<ktl-builder's home>/engine-<id>/` (id: a hash of the state directory), created and
 *     written by that user, never by root; `<state>/builder/engine.sock` links to the socket
 *     and engine.log stays in `<state>/builder/`, written through a descriptor root opened.
 * The runtime directory (XDG_RUNTIME_DIR: rootlesskit's state, dockerd's exec root, nested
 * unix sockets) moves to `/tmp/ktl-builder-<uid>-<id>` when the state directory's path is too
 * long for them.
 */
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { engineSecurityOptions, isRootlessEngine } from '@ktl/buildkit-client';
import { BuilderError, BuilderExit } from './errors';
import { listProcs, processTree } from './procs';
import { checkHost, checkUser, describeProblems, type RootlessTools } from './rootless-preflight';
import { asUser, callerUser, type EngineUser, ensureBuilderUser } from './rootless-user';

type Env = Readonly<Record<string, string | undefined>>;

/** Longest runtime directory: containerd's sockets nest ~40 bytes below it (limit 108). */
const MAX_RUNTIME_DIR = 60;

export interface RootlessPlan {
  readonly user: EngineUser;
  readonly tools: RootlessTools;
  readonly dockerd: string;
  /** The engine's own directory (its data, socket, config, runtime dir). */
  readonly engineDir: string;
  readonly dataDir: string;
  /** Where dockerd listens. */
  readonly socket: string;
  readonly runtimeDir: string;
  readonly config: string;
}

const shortHash = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 8);

/**
 * Checks the host and the user, creating ktl's system user when ktl is root; every missing
 * piece is named at once (exit 4), nothing has started yet.
 */
export function planRootless(opts: {
  env: Env;
  builderDir: string;
  dockerd: string;
  log: (line: string) => void;
}): RootlessPlan {
  const host = checkHost(opts.env);
  // The system user is made only once nothing host-wide stands in the way.
  if (host.problems.length > 0) fail(host.problems);
  const root = process.getuid?.() === 0;
  const user = root ? ensureBuilderUser(opts.log) : callerUser(opts.env);
  const problems = checkUser(user);
  if (problems.length > 0) fail(problems);
  const engineDir = root
    ? join(user.home, `engine-${shortHash(opts.builderDir)}`)
    : opts.builderDir;
  const inside = join(engineDir, 'r');
  const runtimeDir =
    inside.length <= MAX_RUNTIME_DIR
      ? inside
      : `/tmp/ktl-builder-${user.uid}-${shortHash(opts.builderDir)}`;
  const socket = join(engineDir, 'engine.sock');
  if (socket.length > 100) {
    throw new BuilderError(
      `the socket path ${socket} is too long for a unix socket (${socket.length} > 100 bytes)`,
      BuilderExit.USAGE,
      'set KTL_STATE_DIR to a shorter directory',
    );
  }
  return {
    user,
    tools: host.tools!,
    dockerd: opts.dockerd,
    engineDir,
    dataDir: join(engineDir, 'data'),
    socket,
    runtimeDir,
    config: join(engineDir, 'daemon.json'),
  };
}

function fail(problems: Parameters<typeof describeProblems>[0]): never {
  const { message, hint } = describeProblems(problems);
  throw new BuilderError(message, BuilderExit.START_FAILED, hint);
}

/**
 * Makes the engine's directories and config as the engine's user, then checks each is a real
 * directory of that user (a link planted in /tmp or in the user's home is refused).
 */
export function prepareRootless(plan: RootlessPlan): void {
  const { user } = plan;
  const dirs = [plan.engineDir, plan.dataDir, plan.runtimeDir];
  const mk = asUser(user, 'sh', [
    '-c',
    'umask 077 && mkdir -p -- "$@" && chmod 700 -- "$@"',
    'sh',
    ...dirs,
  ]);
  const config = `${JSON.stringify({ features: { 'containerd-snapshotter': true } })}\n`;
  const wr =
    mk.status === 0
      ? asUser(user, 'sh', ['-c', 'umask 077 && cat > "$1"', 'sh', plan.config], { input: config })
      : mk;
  if (wr.status !== 0) {
    throw new BuilderError(
      `cannot prepare ${plan.engineDir} as ${user.name}: ${String(wr.stderr).trim() || wr.error?.message}`,
      BuilderExit.START_FAILED,
      `${user.name} must be able to create ${plan.engineDir} and ${plan.runtimeDir}`,
    );
  }
  for (const d of dirs) {
    const st = lstatSync(d);
    if (!st.isDirectory() || st.uid !== user.uid) {
      throw new BuilderError(
        `${d} is not a directory owned by ${user.name} (${st.isSymbolicLink() ? 'a symlink' : `owner uid ${st.uid}`})`,
        BuilderExit.START_FAILED,
        `remove ${d} and run ktl builder start again`,
      );
    }
  }
}

/** The command that starts the engine, with an environment of ktl's making only. */
export function rootlessCommand(
  plan: RootlessPlan,
  env: Env,
): { cmd: string; args: string[]; env: Record<string, string> } {
  return {
    cmd: plan.tools.script,
    args: [
      '--host',
      `unix://${plan.socket}`,
      '--data-root',
      plan.dataDir,
      '--config-file',
      plan.config,
    ],
    // Nothing of the caller's environment but PATH: DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS or
    // ..._DISABLE_HOST_LOOPBACK=false there would quietly give RUN steps the host's loopback.
    env: {
      PATH: env.PATH || '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      HOME: plan.user.home,
      USER: plan.user.name,
      LOGNAME: plan.user.name,
      XDG_RUNTIME_DIR: plan.runtimeDir,
      DOCKERD: plan.dockerd,
      DOCKERD_ROOTLESS_ROOTLESSKIT_STATE_DIR: join(plan.runtimeDir, 'rootlesskit'),
      DOCKERD_ROOTLESS_ROOTLESSKIT_NET: 'slirp4netns',
      // What the script picks itself for slirp4netns when it chooses the driver (1500 otherwise).
      DOCKERD_ROOTLESS_ROOTLESSKIT_MTU: '65520',
      DOCKERD_ROOTLESS_ROOTLESSKIT_DISABLE_HOST_LOOPBACK: 'true',
      DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER: 'builtin',
      DOCKERD_ROOTLESS_ROOTLESSKIT_SLIRP4NETNS_SANDBOX: 'auto',
      DOCKERD_ROOTLESS_ROOTLESSKIT_SLIRP4NETNS_SECCOMP: 'auto',
    },
  };
}

/**
 * Checks the running engine is what was asked for: rootlesskit and slirp4netns both run with
 * host loopback disabled, and the engine says it is rootless. Returns what is wrong, if any.
 */
export async function verifyRootless(pid: number, address: string): Promise<string | undefined> {
  let top = '';
  try {
    top = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return `the engine's process ${pid} is gone`;
  }
  if (!top.includes('--disable-host-loopback'))
    return `rootlesskit (pid ${pid}) runs without --disable-host-loopback: RUN steps could reach the host's 127.0.0.1`;
  const slirp = processTree(pid, listProcs()).find((p) => p.comm === 'slirp4netns');
  if (!slirp) return 'no slirp4netns runs under rootlesskit';
  if (!slirp.cmdline.includes('--disable-host-loopback'))
    return `slirp4netns (pid ${slirp.pid}) runs without --disable-host-loopback`;
  const opts = await engineSecurityOptions(address);
  if (!opts) return `the engine at ${address} does not answer GET /info`;
  if (!isRootlessEngine(opts))
    return `the engine at ${address} does not report rootless mode (security options: ${opts.join('; ')})`;
  return undefined;
}

/** Removes the runtime directory (nested sockets, rootlesskit's state) as its owner. */
export function removeRuntimeDir(user: EngineUser, dir: string): void {
  asUser(user, 'rm', ['-rf', '--', dir]);
}
