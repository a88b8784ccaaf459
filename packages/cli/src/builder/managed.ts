/**
 * The ktl-managed builder, started on a private socket under ktl's state directory and found
 * by `ktl build` without any variable set. By default it is rootless: dockerd in Docker's
 * rootless mode as an unprivileged user, with host loopback disabled (rootless.ts says where
 * its files live and why). `--rootful` runs a `buildkitd` or `dockerd` from PATH as root, as
 * any other root daemon: its RUN steps granted `network.host` share the host's network
 * (loopback services included) and `security.insecure` makes them root on the host.
 *
 * Layout (`<state>` is $KTL_STATE_DIR, else $XDG_STATE_HOME/ktl, else ~/.local/state/ktl):
 *   <state>/builder/engine.sock   the API socket (ktl as root, rootless: a link to it)
 *   <state>/builder/builder.json  what is running (engine, mode, pid, address, user, bridge)
 *   <state>/builder/engine.log    the engine's own log
 *   <state>/builder/data          its images and build cache (kept across restarts)
 *
 * A rootful dockerd gets a bridge of its own (default `ktl0`, 10.213.0.1/24) so it can run
 * next to another engine on the same machine without fighting over docker0, its own
 * containerd namespace, and an exec root short enough for the unix sockets nested inside it.
 * A rootless one needs none of that: its bridge and containerd live in its own namespaces.
 */
import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@ktl/buildkit-client';
import { BuilderError, BuilderExit } from './errors';
import { endAll, engineProcesses, type Proc } from './procs';
import { deleteBridge, type EngineKind, planRootful, validateBridge } from './rootful';
import {
  planRootless,
  prepareRootless,
  removeRuntimeDir,
  rootlessCommand,
  verifyRootless,
} from './rootless';
import { onPath } from './rootless-preflight';
import { asUser, type EngineUser } from './rootless-user';

export { BuilderError, BuilderExit } from './errors';

export type { EngineKind } from './rootful';

export interface ManagedBuilder {
  readonly engine: EngineKind;
  /** Docker's rootless mode as an unprivileged user; absent means rootful. */
  readonly rootless?: boolean;
  readonly binary: string;
  /** The process ktl started: the engine, or (rootless) rootlesskit above it. */
  readonly pid: number;
  /** `pid`'s comm, to tell it from a reused pid (absent: the engine's name). */
  readonly comm?: string;
  /** What `--builder` / BUILDKIT_HOST would say: `docker://unix://...` or `unix://...`. */
  readonly address: string;
  readonly socket: string;
  /** The engine's directory: its data, and (rootless) its config and runtime directory. */
  readonly dir: string;
  readonly log: string;
  /** Rootless: who runs it, where its runtime directory is, the socket `socket` links to. */
  readonly user?: { readonly name: string; readonly uid: number; readonly gid: number };
  readonly runtimeDir?: string;
  readonly engineSocket?: string;
  readonly bridge?: { readonly name: string; readonly cidr: string; readonly created: boolean };
  readonly startedAt: string;
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

/** The state file as written, whether or not what it names still runs. */
function readState(env: Env): ManagedBuilder | undefined {
  try {
    const st = JSON.parse(readFileSync(stateFile(builderDir(env)), 'utf8')) as ManagedBuilder;
    return typeof st.pid === 'number' ? st : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The running ktl-managed builder, or undefined (a stale state file is ignored). A rootless
 * engine's socket must still be a socket of the engine's user: its directory is that user's,
 * and a link put in the socket's place must not send ktl to another daemon.
 */
export function readManagedBuilder(env: Env = process.env): ManagedBuilder | undefined {
  const st = readState(env);
  if (!st || !alive(st.pid, st.comm ?? st.engine, st.engineSocket ?? st.socket)) return undefined;
  if (st.rootless) {
    try {
      const sock = lstatSync(st.engineSocket ?? st.socket);
      if (!sock.isSocket() || sock.uid !== st.user?.uid) return undefined;
    } catch {
      return undefined;
    }
  }
  return st;
}

export const START_HINT =
  "`ktl builder start` starts a ktl-managed engine (rootless: Docker's rootless mode as an unprivileged user) that ktl build then finds";

/** Discovery candidates for `ktl build`: the managed builder when one is running. */
export function managedCandidates(env: Env = process.env): { source: string; address: string }[] {
  const b = readManagedBuilder(env);
  return b
    ? [
        {
          source: `ktl builder (${b.engine}${b.rootless ? ', rootless' : ''}, ktl builder start)`,
          address: b.address,
        },
      ]
    : [];
}

export interface StartOptions {
  readonly env?: Env;
  /** Run the engine as root (buildkitd or dockerd from PATH) instead of rootless. */
  readonly rootful?: boolean;
  /** Which engine; `auto` takes buildkitd when on PATH, else dockerd (rootless: dockerd). */
  readonly engine?: EngineKind | 'auto';
  readonly bridgeName?: string;
  readonly bridgeCidr?: string;
  readonly timeoutMs?: number;
  readonly log?: (line: string) => void;
}

function tail(file: string, n = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
  } catch {
    return '(no log)';
  }
}

const mode = (rootless: boolean | undefined) => (rootless ? 'rootless' : 'rootful');

/** What a launch needs, whichever mode. */
interface Launch {
  readonly engine: EngineKind;
  readonly binary: string;
  readonly cmd: string;
  readonly args: string[];
  readonly env: Record<string, string | undefined>;
  readonly address: string;
  /** Where the engine listens. */
  readonly socket: string;
  readonly dir: string;
  readonly bridge?: ManagedBuilder['bridge'];
  readonly rootless?: {
    readonly user: EngineUser;
    readonly runtimeDir: string;
  };
}

function checkFlags(opts: StartOptions): void {
  if (opts.rootful) return;
  if (opts.engine === 'buildkitd') {
    throw new BuilderError(
      "--engine buildkitd runs only with --rootful: the rootless engine is dockerd in Docker's rootless mode",
      BuilderExit.USAGE,
      'drop --engine for the rootless engine, or add --rootful for a buildkitd run as root',
    );
  }
  const bridgeFlag =
    opts.bridgeName !== undefined
      ? '--bridge-name'
      : opts.bridgeCidr !== undefined
        ? '--bridge-cidr'
        : '';
  if (bridgeFlag) {
    throw new BuilderError(
      `${bridgeFlag} applies to --rootful only: the rootless engine's bridge lives in its own network namespace`,
      BuilderExit.USAGE,
      `drop ${bridgeFlag}, or add --rootful`,
    );
  }
}

function planLaunch(opts: StartOptions, env: Env, dir: string, log: (l: string) => void): Launch {
  if (opts.rootful) {
    const p = planRootful({
      env,
      dir,
      engine: opts.engine ?? 'auto',
      bridgeName: opts.bridgeName ?? 'ktl0',
      bridgeCidr: opts.bridgeCidr ?? '10.213.0.1/24',
    });
    return { ...p, cmd: p.binary, env: { ...env }, dir };
  }
  const dockerd = onPath('dockerd', env);
  if (!dockerd) {
    throw new BuilderError(
      `dockerd is not on PATH (${env.PATH ?? ''}): the rootless engine is Docker's rootless mode`,
      BuilderExit.NO_ENGINE,
      'install it with its rootless parts (Debian: apt-get install docker.io rootlesskit slirp4netns uidmap), or point BUILDKIT_HOST / DOCKER_HOST at a running builder',
    );
  }
  const plan = planRootless({ env, builderDir: dir, dockerd, log });
  prepareRootless(plan);
  const c = rootlessCommand(plan, env);
  return {
    engine: 'dockerd',
    binary: dockerd,
    ...c,
    address: `docker://unix://${join(dir, 'engine.sock')}`,
    socket: plan.socket,
    dir: plan.engineDir,
    rootless: { user: plan.user, runtimeDir: plan.runtimeDir },
  };
}

/** Starts the managed builder, or returns the one already running. */
export async function startManagedBuilder(
  opts: StartOptions = {},
): Promise<{ builder: ManagedBuilder; alreadyRunning: boolean }> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? (() => {});
  const rootful = opts.rootful ?? false;
  checkFlags(opts);
  if (rootful) validateBridge(opts.bridgeName ?? 'ktl0', opts.bridgeCidr ?? '10.213.0.1/24');
  const running = readManagedBuilder(env);
  if (running) {
    if (Boolean(running.rootless) === !rootful) return { builder: running, alreadyRunning: true };
    throw new BuilderError(
      `a ${mode(running.rootless)} ktl-managed builder is already running (${running.engine}, pid ${running.pid}), not the ${mode(!rootful)} one asked for`,
      BuilderExit.USAGE,
      `stop it first (ktl builder stop), then ktl builder start${rootful ? ' --rootful' : ''}`,
    );
  }

  const dir = builderDir(env);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const link = join(dir, 'engine.sock');
  rmSync(link, { force: true });
  const l = planLaunch(opts, env, dir, log);
  if (l.socket !== link) asUserRm(l, l.socket);
  const logFile = join(dir, 'engine.log');

  // Opened here, in ktl's own directory, and handed over: the engine never needs the path.
  const fd = openSync(logFile, 'a', 0o600);
  writeFileSync(
    fd,
    `\n==== ${new Date().toISOString()} ktl builder start (${mode(Boolean(l.rootless))}${l.rootless ? `, as ${l.rootless.user.name}` : ''}): ${l.cmd} ${l.args.join(' ')}\n`,
  );
  const drop =
    l.rootless && process.getuid?.() === 0
      ? { uid: l.rootless.user.uid, gid: l.rootless.user.gid, cwd: l.rootless.user.home }
      : {};
  const child = spawn(l.cmd, l.args, {
    detached: true,
    stdio: ['ignore', fd, fd],
    env: l.env,
    ...drop,
  });
  closeSync(fd);
  let exited: string | undefined;
  child.on('exit', (code, sig) => {
    exited = sig ? `signal ${sig}` : `status ${code}`;
  });
  child.on('error', (e) => {
    exited = e.message;
  });
  child.unref();

  const failStart = async (why: string): Promise<never> => {
    if (child.pid !== undefined) {
      const procs = engineProcesses(child.pid, l.rootless && { ...l.rootless, socket: l.socket });
      await endAll(child.pid, procs, 10_000);
    }
    deleteBridge(l.bridge);
    if (l.rootless) removeRuntimeDir(l.rootless.user, l.rootless.runtimeDir);
    rmSync(link, { force: true });
    throw new BuilderError(
      `${l.engine}${l.rootless ? ' (rootless)' : ''} did not start: ${why}\n--- last lines of ${logFile}\n${tail(logFile)}`,
      BuilderExit.START_FAILED,
      `see ${logFile}`,
    );
  };

  const timeoutMs = opts.timeoutMs ?? 60_000;
  const engineAddress = `${l.engine === 'dockerd' ? 'docker://' : ''}unix://${l.socket}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited !== undefined) await failStart(`it exited (${exited})`);
    if (existsSync(l.socket)) {
      try {
        const conn = await connect(engineAddress, { env: {} });
        await conn.close();
        break;
      } catch {}
    }
    if (Date.now() > deadline) await failStart(`no answer on ${l.socket} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }

  let comm: string = l.engine;
  if (l.rootless) {
    comm = readFileSync(`/proc/${child.pid}/comm`, 'utf8').trim();
    const wrong = await verifyRootless(child.pid!, engineAddress);
    if (wrong) await failStart(`refused to keep it: ${wrong}`);
    if (l.socket !== link) symlinkSync(l.socket, link);
  }
  const { rootless } = l;
  const builder: ManagedBuilder = {
    engine: l.engine,
    rootless: Boolean(rootless),
    binary: l.binary,
    pid: child.pid!,
    comm,
    address: l.address,
    socket: link,
    dir: l.dir,
    log: logFile,
    ...(rootless
      ? {
          user: { name: rootless.user.name, uid: rootless.user.uid, gid: rootless.user.gid },
          runtimeDir: rootless.runtimeDir,
          ...(l.socket !== link ? { engineSocket: l.socket } : {}),
        }
      : {}),
    ...(l.bridge ? { bridge: l.bridge } : {}),
    startedAt: new Date().toISOString(),
  };
  writeFileSync(stateFile(dir), `${JSON.stringify(builder, null, 2)}\n`);
  return { builder, alreadyRunning: false };
}

/** A stale socket in the engine user's directory is removed by that user, not by root. */
function asUserRm(l: Launch, path: string): void {
  if (l.rootless) asUser(l.rootless.user, 'rm', ['-f', '--', path]);
  else rmSync(path, { force: true });
}

export interface StopResult {
  /** The builder that was running, or undefined. */
  readonly builder: ManagedBuilder | undefined;
  /** Processes of the engine that would not end (empty when all went). */
  readonly left: readonly Proc[];
}

/**
 * Stops the managed builder and everything it started (rootless: rootlesskit, its child,
 * dockerd, containerd, slirp4netns, shims); its data is kept. Processes an engine left when
 * its top process died are ended too.
 */
export async function stopManagedBuilder(
  opts: { env?: Env; timeoutMs?: number; log?: (line: string) => void } = {},
): Promise<StopResult> {
  const env = opts.env ?? process.env;
  const dir = builderDir(env);
  const st = readState(env);
  const b = readManagedBuilder(env);
  let left: readonly Proc[] = [];
  if (st) {
    const user = st.user;
    const rootless =
      st.rootless && user && st.runtimeDir
        ? { user, runtimeDir: st.runtimeDir, socket: st.engineSocket ?? st.socket }
        : undefined;
    // A stale state's pid may have been reused by now: only a live builder's tree is walked.
    const procs = engineProcesses(b ? b.pid : -1, rootless);
    const first = b?.pid ?? procs[0]?.pid;
    if (first !== undefined) {
      if (!b) for (const p of procs.slice(1)) signalQuietly(p.pid, 'SIGTERM');
      left = await endAll(first, procs, opts.timeoutMs ?? 30_000, opts.log);
    }
    if (b) deleteBridge(b.bridge);
    if (rootless && user && left.length === 0)
      removeRuntimeDir(
        { ...user, home: '/', dedicated: process.getuid?.() === 0 },
        rootless.runtimeDir,
      );
  }
  rmSync(stateFile(dir), { force: true });
  rmSync(join(dir, 'engine.sock'), { force: true });
  return { builder: b, left };
}

function signalQuietly(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {}
}
