/**
 * The jail of a sandboxed `ktl build`: the policy, the binds planned from the command line,
 * a private directory (bound read-only at JAIL_GATEWAY_DIR, where the gateway socket and the
 * build spec appear later) and the runtime started on the jailed half of ktl, which waits for
 * its spec. Nothing here talks to a builder: the jail can start before the builder is found,
 * and even before the CLI is loaded (src/early.ts), and be discarded if it is not wanted.
 *
 * No dependency on @ktl/buildkit-client: the early start loads this without it.
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  realpathSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MountPt } from '@ktl/nsjail-config';
import {
  type RunBind,
  type RuntimeName,
  resolveRuntime,
  run,
  SandboxError,
} from '@ktl/sandbox-runner';
import type { BuildOptions } from '../build/options';
import { mark } from '../timing';
import {
  closeBindPlan,
  inMountOrder,
  makeBindDirs,
  masksFor,
  type PlannedBind,
  planBuildBinds,
} from './binds';
import type { EngineSocket } from './engine-sockets';
import { JAIL_GATEWAY_DIR } from './jail-paths';
import { loadSandboxPolicy } from './policy';
import type { SandboxSettings } from './settings';
import type { StagedOutput } from './staged-outputs';

export interface JailInputs {
  /** The command line, parsed and validated: binds are planned from it. */
  options: BuildOptions;
  /** --sandbox-bind values (HOST:GUEST[:ro|rw]). */
  sandboxBinds: readonly string[];
  cwd: string;
  settings: SandboxSettings;
  cacheDir: string;
  /** Environment variables the command line names (secrets from env, --build-arg KEY). */
  forwardEnv?: Readonly<Record<string, string>>;
}

/** How the jail ended, as plain data (the early start's classes are not the CLI bundle's). */
export type JailEnd =
  /** The jailed ktl ran and exited with this status (128+N: killed by signal N). */
  | { kind: 'exited'; exitCode: number }
  /** Stopped by stop()/discard(). */
  | { kind: 'stopped' }
  /** The runtime failed, or ran out of time, before or around the jailed ktl. */
  | { kind: 'failed'; code: string; message: string; runtimeLog: readonly string[] };

export interface Jail {
  /** Private directory of this build, bound read-only at JAIL_GATEWAY_DIR. */
  readonly dir: string;
  /** The policy file, or `embedded default` / `embedded hermetic`, for the banner. */
  readonly policyLabel: string;
  /** The runtime run() picked: `nsjail` or `bwrap`. */
  readonly runtime: string;
  readonly planned: readonly PlannedBind[];
  /** What is hidden inside (engine sockets under bound directories), for --sandbox-logs. */
  readonly masked: readonly { dst: string; why: string }[];
  /** Guest paths of binds made empty instead (they hold an engine socket; nsjail). */
  readonly emptied: ReadonlySet<string>;
  /** The engine sockets known on this host, for the jailed ktl's self-check. */
  readonly engines: readonly EngineSocket[];
  /**
   * Directories the outer ktl writes into itself (--iidfile, --metadata-file), by the path on
   * the command line: descriptors pinned when the binds were planned, open until cleanUp.
   */
  readonly outerDirs: ReadonlyMap<string, number>;
  /** File outputs, written inside to a private directory and moved into place after. */
  readonly staged: readonly StagedOutput[];
  /** ktl's bundles (dist/), bound read-only: all of ktl the jail sees. */
  readonly bundleDir: string;
  readonly ended: Promise<JailEnd>;
  /** Where the runtime's streamed log lines (--sandbox-logs) go; held until this is called. */
  logTo(write: (line: string) => void): void;
  /** Stops the jail (its end is `stopped` unless it had already ended). */
  stop(): void;
  /** Removes what was made for this build: the private directory, and the output directories
   * created for binds that are still empty (a build that failed wrote nothing there). */
  cleanUp(opts: { keepOutputs: boolean }): void;
  /** stop(), wait for the end, cleanUp() everything. */
  discard(): Promise<void>;
}

/**
 * The runtime a sandboxed build will use. With no choice made anywhere (runtime `auto`, no
 * --sandbox or --hermetic, no KTL_NSJAIL_BIN/KTL_BWRAP_BIN) and neither runtime installed, the
 * build runs on the host with a loud warning; every explicit ask for the sandbox fails instead
 * (SandboxError E_NO_RUNTIME: what is missing and how to install it).
 */
export function pickRuntime(
  settings: SandboxSettings,
  env: NodeJS.ProcessEnv = process.env,
): { runtime: RuntimeName } | { hostWarning: string } {
  try {
    return { runtime: resolveRuntime(settings.runtime, env).name };
  } catch (e) {
    const explicit =
      settings.mode !== 'default' ||
      settings.runtime !== 'auto' ||
      Boolean(env.KTL_NSJAIL_BIN) ||
      Boolean(env.KTL_BWRAP_BIN);
    if (explicit || SandboxError.from(e).code !== 'E_NO_RUNTIME') throw e;
    return {
      hostWarning:
        'WARNING: no sandbox runtime (neither nsjail nor bwrap is installed): the build client ' +
        'runs on the host, unsandboxed, and a hostile Dockerfile or build context can read any ' +
        'file your user can. Install bubblewrap (`apt-get install bubblewrap`), or pass ' +
        '--sandbox to refuse to build without the sandbox.',
    };
  }
}

/** The jailed half's command: dist/boot.cjs loads dist/inner.cjs (through its code cache). */
function innerCommand(): string[] {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const d of [here, join(here, '..', 'dist')])
    if (existsSync(join(d, 'inner.cjs')) && existsSync(join(d, 'boot.cjs')))
      return [join(d, 'boot.cjs'), 'inner'];
  throw new Error(`ktl is not built: no boot.cjs and inner.cjs near ${here} (run pnpm build)`);
}

/** Empty directories from `leaf` up to `top` (made by mkdir -p), deepest first. */
function removeEmptyChain(leaf: string, top: string): void {
  for (let d = leaf; ; d = dirname(d)) {
    try {
      if (readdirSync(d).length > 0) return;
      rmdirSync(d);
    } catch {
      return;
    }
    if (d === top || dirname(d) === d) return;
  }
}

/**
 * Plans and starts the jail. Throws PolicyLoadError, PolicyError or BindPlanError (nothing made
 * yet) or a runtime error (everything made removed again).
 */
export async function startJail(b: JailInputs): Promise<Jail> {
  const loaded = await loadSandboxPolicy(b.settings.policyFile, b.settings.hermetic);
  const plan = planBuildBinds(b.options, b.sandboxBinds, b.cwd);
  const planned = plan.binds;
  const made: { leaf: string; top: string }[] = [];
  let dir: string;
  try {
    dir = mkdtempSync(join(tmpdir(), 'ktl-sandbox-'));
  } catch (e) {
    closeBindPlan(plan);
    throw e;
  }
  let closed = false;
  let staging: string | undefined;
  const cleanUp = ({ keepOutputs }: { keepOutputs: boolean }) => {
    if (!closed) closeBindPlan(plan);
    closed = true;
    rmSync(dir, { recursive: true, force: true });
    if (staging) rmSync(staging, { recursive: true, force: true });
    if (!keepOutputs) for (const m of made.splice(0).reverse()) removeEmptyChain(m.leaf, m.top);
  };
  try {
    made.push(...makeBindDirs(plan));
    mkdirSync(b.cacheDir, { recursive: true });
    // File outputs are written here inside (ktl's cache directory is bound read-write, and on
    // the same filesystem as the outputs more often than /tmp is): one directory per build.
    const staged: StagedOutput[] = [];
    if (plan.fileOutputs.length > 0) {
      staging = mkdtempSync(join(b.cacheDir, 'outputs-'));
      for (const f of plan.fileOutputs) {
        mkdirSync(join(staging, String(f.index)));
        staged.push({
          index: f.index,
          dest: f.dest,
          staged: join(staging, String(f.index), basename(f.dest)),
          dirFd: f.dir.fd,
        });
      }
    }
    // What masks an engine socket (an empty file) or directory (an empty one), read-only.
    const maskFile = join(dir, 'masked');
    const maskDir = join(dir, 'masked.d');
    writeFileSync(maskFile, '', { mode: 0o444 });
    mkdirSync(maskDir, { mode: 0o555 });
    mark('outer: policy loaded, binds planned');
    const node = realpathSync(process.execPath);
    // Of ktl, the jail gets its built bundles only (self-contained: no node_modules), not
    // the install or checkout they sit in.
    const inner = innerCommand();
    const dist = dirname(inner[0]!);
    const runtime = resolveRuntime(b.settings.runtime).name;
    const { masks, emptied } = masksFor(plan.masks, planned, runtime);
    const binds: RunBind[] = [
      { src: node, dst: node, readonly: true },
      { src: dist, dst: dist, readonly: true },
      // Each from the descriptor pinned when it was checked (bubblewrap mounts that; nsjail
      // its current path), and verified inside by device and inode (inner.ts).
      ...planned.map((p) =>
        emptied.has(p.dst)
          ? { src: maskDir, dst: p.dst, readonly: p.readonly }
          : { src: p.src, dst: p.dst, readonly: p.readonly, fd: p.pin.fd },
      ),
      ...masks.map((m) => ({
        src: m.kind === 'file' ? maskFile : maskDir,
        dst: m.dst,
        readonly: true,
      })),
      { src: dir, dst: JAIL_GATEWAY_DIR, readonly: true },
      { src: b.cacheDir, dst: b.cacheDir, readonly: false },
    ];
    inMountOrder(binds);
    // The working directory must exist inside for relative paths to keep their meaning; when
    // nothing bound covers it, an empty read-only tmpfs stands in for it (it reveals nothing).
    // `/` and a directory the policy mounts itself (its /tmp) are there already: a tmpfs over
    // them would hide the jail's root or its writable /tmp.
    const covered =
      b.cwd === '/' ||
      (loaded.policy.mount ?? []).some((m) => m.dst === b.cwd) ||
      binds.some((x) => b.cwd === x.dst || b.cwd.startsWith(`${x.dst}/`));
    const cwdMount: MountPt[] = covered
      ? []
      : [{ dst: b.cwd, fstype: 'tmpfs', is_dir: true, options: 'size=4096' }];
    const policy = { ...loaded.policy, mount: [...(loaded.policy.mount ?? []), ...cwdMount] };
    const env = {
      KTL_CACHE_DIR: b.cacheDir,
      HOME: '/tmp',
      ...b.forwardEnv,
      ...(process.env.TERM ? { TERM: process.env.TERM } : {}),
      ...(process.env.KTL_TIMING ? { KTL_TIMING: process.env.KTL_TIMING } : {}),
      ...(process.env.NO_COLOR ? { NO_COLOR: process.env.NO_COLOR } : {}),
    };
    const held: string[] = [];
    let write: ((line: string) => void) | undefined;
    const stopper = new AbortController();
    const started = run(node, inner, {
      policy,
      runtime: b.settings.runtime,
      binds,
      env,
      cwd: b.cwd,
      stdio: 'inherit',
      logs: b.settings.logs ? 'stream' : 'on-failure',
      onLog: (line: string) => (write ? write(line) : held.push(line)),
      cancelSignal: stopper.signal,
    });
    mark('outer: runtime spawned');
    const ended: Promise<JailEnd> = started.then(
      (r) => ({ kind: 'exited', exitCode: r.exitCode ?? 0 }),
      (e: unknown) => {
        const err = SandboxError.from(e);
        if (err.code === 'E_CANCELED') return { kind: 'stopped' };
        if (err.code === 'E_EXIT' || err.code === 'E_SIGNAL')
          return { kind: 'exited', exitCode: err.exitCode ?? 1 };
        return {
          kind: 'failed',
          code: err.code,
          message: err.message,
          runtimeLog: [...err.runtimeLog],
        };
      },
    );
    return {
      dir,
      policyLabel: loaded.label,
      runtime,
      planned,
      masked: [
        ...masks,
        ...[...emptied].map((dst) => ({ dst, why: 'holds an engine socket: bound empty' })),
      ],
      emptied,
      engines: plan.engines,
      outerDirs: new Map([...plan.outerDirs].map(([d, p]) => [d, p.fd])),
      staged,
      bundleDir: dist,
      ended,
      logTo(w) {
        write = w;
        for (const line of held.splice(0)) w(line);
      },
      stop: () => stopper.abort(),
      cleanUp,
      async discard() {
        stopper.abort();
        await ended;
        cleanUp({ keepOutputs: false });
      },
    };
  } catch (e) {
    cleanUp({ keepOutputs: false });
    throw e;
  }
}
