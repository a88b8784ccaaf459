/**
 * `ktl build` inside the sandbox: the outer ktl plans binds from the command line, starts the
 * BuildKit gateway (the jail never sees the builder's own socket), and re-executes itself in
 * the jail with KTL_IN_SANDBOX=1. The inner ktl does the build; the outer one only relays its
 * exit status, cancels on Ctrl-C and tears everything down.
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  realpathSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BuildkitAddress, newSessionId, startGateway } from '@ktl/buildkit-client';
import type { Bind, MountPt } from '@ktl/nsjail-config';
import { resolveRuntime, run, SandboxError } from '@ktl/sandbox-runner';
import type { BuildOptions } from '../build/options';
import { EndedElsewhere } from '../build/run';
import { mark } from '../timing';
import { type PlannedBind, planBuildBinds } from './binds';
import { INNER_SPEC_FILE, INNER_SPEC_VERSION, type InnerSpec } from './inner-spec';
import { JAIL_GATEWAY_DIR, SANDBOX_FAILED_EXIT } from './jail-paths';
import { loadSandboxPolicy } from './policy';
import type { SandboxSettings } from './settings';

export { JAIL_GATEWAY_DIR, SANDBOX_FAILED_EXIT };

export interface SandboxedBuild {
  /** The command line, parsed and validated: binds are planned from it, the jail builds it. */
  options: BuildOptions;
  /** --sandbox-bind values (HOST:GUEST[:ro|rw]). */
  sandboxBinds: readonly string[];
  cwd: string;
  settings: SandboxSettings;
  /**
   * The real builder, being found by the outer ktl: the jail starts meanwhile (its start-up is
   * the longest step), and gets its build spec once this resolves. A rejection stops the jail
   * and is rethrown.
   */
  upstream: Promise<BuildkitAddress>;
  /**
   * Sends the Solve (out here, on the real builder) naming the session the jailed ktl serves;
   * resolves to ktl build's exit status. `signal` aborts when the jail fails or on Ctrl-C.
   */
  solve: (sessionId: string, signal: AbortSignal) => Promise<number>;
  cacheDir: string;
  /** Environment variables the command line names (secrets from env, --build-arg KEY). */
  forwardEnv?: Readonly<Record<string, string>>;
  /** Writes the jail's docker config.json into the given directory; returns the hosts. */
  writeDockerConfig?: (dir: string) => Promise<readonly string[]>;
  stderr: (text: string) => void;
  signal?: AbortSignal;
}

/** The directory tree ktl runs from (the workspace root in a checkout), bound read-only. */
export function ktlInstallRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let d = dir; d !== dirname(d); d = dirname(d)) {
    if (existsSync(join(d, 'pnpm-workspace.yaml'))) return d;
    if (existsSync(join(d, 'package.json')) && existsSync(join(d, 'node_modules'))) dir = d;
  }
  return dir;
}

/** The jailed half's command: dist/boot.cjs loads dist/inner.cjs (through its code cache). */
function innerCommand(): string[] {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const d of [here, join(here, '..', 'dist')])
    if (existsSync(join(d, 'inner.cjs')) && existsSync(join(d, 'boot.cjs')))
      return [join(d, 'boot.cjs'), 'inner'];
  throw new Error(`ktl is not built: no boot.cjs and inner.cjs near ${here} (run pnpm build)`);
}

export async function runBuildInSandbox(b: SandboxedBuild): Promise<number> {
  mark('outer: sandbox start');
  const loaded = await loadSandboxPolicy(b.settings.policyFile, b.settings.hermetic);
  const { binds: planned, ensureDirs } = planBuildBinds(b.options, b.sandboxBinds, b.cwd);
  for (const d of ensureDirs) mkdirSync(d, { recursive: true });
  mkdirSync(b.cacheDir, { recursive: true });

  mark('outer: policy loaded, binds planned');
  const private_ = mkdtempSync(join(tmpdir(), 'ktl-sandbox-'));
  const socketPath = join(private_, 'buildkit.sock');
  // The jail gets the build session and nothing else of the builder: the Solve is sent from
  // out here, built from the validated command line.
  const gateway = await startGateway({
    upstream: b.upstream,
    socketPath,
    sessionOnly: true,
    log: (line) => {
      if (b.settings.logs || line.startsWith('refused')) b.stderr(`[sandbox] gateway: ${line}\n`);
    },
  });
  mark('outer: gateway up');
  try {
    const authHosts = b.writeDockerConfig
      ? await b.writeDockerConfig(join(private_, 'docker'))
      : [];
    mark('outer: credentials written');
    const root = ktlInstallRoot();
    const node = realpathSync(process.execPath);
    const binds: Bind[] = [
      { src: node, dst: node, readonly: true },
      { src: root, dst: root, readonly: true },
      ...planned.map((p: PlannedBind) => ({ src: p.src, dst: p.dst, readonly: p.readonly })),
      { src: private_, dst: JAIL_GATEWAY_DIR, readonly: true },
      { src: b.cacheDir, dst: b.cacheDir, readonly: false },
    ];
    // The working directory must exist inside for relative paths to keep their meaning; when
    // nothing bound covers it, an empty read-only tmpfs stands in for it (it reveals nothing).
    const covered = binds.some((x) => b.cwd === x.dst || b.cwd.startsWith(`${x.dst}/`));
    const cwdMount: MountPt[] = covered
      ? []
      : [{ dst: b.cwd, fstype: 'tmpfs', is_dir: true, options: 'size=4096' }];
    const policy = { ...loaded.policy, mount: [...(loaded.policy.mount ?? []), ...cwdMount] };
    const sessionId = newSessionId();
    // Written once the builder is known (the jail is already starting by then), renamed into
    // place whole: the jailed ktl waits for it.
    const handOver = (up: BuildkitAddress) => {
      const prefix = up.kind === 'docker' ? 'docker://unix://' : 'unix://';
      const spec: InnerSpec = {
        version: INNER_SPEC_VERSION,
        options: b.options,
        sessionId,
        gateway: `${prefix}${JAIL_GATEWAY_DIR}/buildkit.sock`,
        logs: b.settings.logs,
        bound: b.sandboxBinds.map((v) => v.split(':')[1] ?? '').filter(Boolean),
        writable: planned.filter((p) => !p.readonly).map((p) => p.dst),
        // The jailed ktl checks (with --sandbox-logs) that the real builder's socket is not there.
        mustNotSee:
          up.kind === 'docker' && up.engine.kind === 'unix'
            ? [up.engine.path]
            : up.kind === 'unix'
              ? [up.path]
              : [],
      };
      const file = join(private_, INNER_SPEC_FILE);
      writeFileSync(`${file}.partial`, JSON.stringify(spec), { mode: 0o600 });
      renameSync(`${file}.partial`, file);
    };
    const env = {
      KTL_CACHE_DIR: b.cacheDir,
      HOME: '/tmp',
      // Resolved credentials only (no helpers run inside); an empty config when there are none.
      DOCKER_CONFIG: `${JAIL_GATEWAY_DIR}/docker`,
      ...b.forwardEnv,
      ...(process.env.TERM ? { TERM: process.env.TERM } : {}),
      ...(process.env.KTL_TIMING ? { KTL_TIMING: process.env.KTL_TIMING } : {}),
      ...(process.env.NO_COLOR ? { NO_COLOR: process.env.NO_COLOR } : {}),
    };
    const command = innerCommand();
    const options = {
      policy,
      runtime: b.settings.runtime,
      binds,
      env,
      cwd: b.cwd,
      stdio: 'inherit' as const,
      logs: b.settings.logs ? ('stream' as const) : ('on-failure' as const),
      onLog: (line: string) => b.stderr(`${line}\n`),
    };
    // Which runtime run() will pick, for the banner (the full plan is made once, by run()).
    const runtime = resolveRuntime(b.settings.runtime).name;
    b.stderr(
      `Running ktl build inside the sandbox (policy: ${loaded.label}, runtime: ${runtime === 'bwrap' ? 'bubblewrap' : runtime}). Set KTL_SANDBOX_DISABLE=1 to opt out.\n`,
    );
    if (b.settings.logs)
      for (const p of planned)
        b.stderr(`[sandbox] bind ${p.src} -> ${p.dst} (${p.readonly ? 'ro' : 'rw'}, ${p.why})\n`);
    if (b.settings.logs) {
      const names = Object.keys(b.forwardEnv ?? {});
      if (names.length > 0) b.stderr(`[sandbox] env forwarded: ${names.join(', ')}\n`);
      b.stderr(
        `[sandbox] registry credentials handed in for: ${authHosts.length > 0 ? authHosts.join(', ') : 'none'}\n`,
      );
    }
    mark('outer: planned; starting the runtime');
    // The jail and the Solve start together: the builder waits for the session while the
    // jailed ktl starts up.
    const jailStop = new AbortController();
    const buildStop = new AbortController();
    const onUserAbort = () => buildStop.abort();
    b.signal?.addEventListener('abort', onUserAbort, { once: true });
    let jailFailure: SandboxError | undefined;
    let jailExit: number | undefined;
    let building = true;
    let jailEndedBuild = false;
    const started = run(node, command, { ...options, cancelSignal: jailStop.signal });
    mark('outer: runtime spawned');
    const jail = started.then(
      (r) => {
        jailExit = r.exitCode ?? 0;
      },
      (e: unknown) => {
        const err = SandboxError.from(e);
        if (err.code === 'E_CANCELED') return;
        if (err.code === 'E_EXIT' || err.code === 'E_SIGNAL') jailExit = err.exitCode ?? 1;
        else jailFailure = err;
        // The session is gone (or never came): the build cannot go on. What ended it is
        // reported below, not as a cancellation.
        if (building) jailEndedBuild = true;
        buildStop.abort(new EndedElsewhere('the sandboxed half of ktl build ended'));
      },
    );
    let code = 1;
    try {
      // No builder: rethrown once the jail is stopped (below: it has nothing to serve).
      handOver(await b.upstream);
      mark('outer: spec handed over');
      code = await b.solve(sessionId, buildStop.signal);
      mark('outer: build done');
    } finally {
      building = false;
      b.signal?.removeEventListener('abort', onUserAbort);
      if (code !== 0) {
        // Failed or canceled: the jail has nothing left to serve; stop it before closing its
        // way out, so it does not report a lost session on top of the real error.
        jailStop.abort();
        await jail;
        await gateway.close();
      } else {
        // Built: close the session's only way out and let the jail wind down.
        await gateway.close();
        const t = setTimeout(() => jailStop.abort(), 3000);
        await jail;
        clearTimeout(t);
      }
    }
    mark('outer: runtime exited');
    if (jailFailure) {
      const err: SandboxError = jailFailure;
      if (err.code === 'E_TIMEOUT') {
        b.stderr(`ktl: ${err.message}\n`);
        return 124;
      }
      // The runtime failed before ktl started inside it: its log says why, unasked.
      for (const line of err.runtimeLog) if (!err.message.includes(line)) b.stderr(`${line}\n`);
      b.stderr(
        `${err.message
          .split('\n')
          .map((l) => `[sandbox] ${l}`)
          .join('\n')}\n`,
      );
      b.stderr(
        'ktl: the sandbox could not start ktl build (see the [sandbox] lines above); check the policy with `ktl sandbox policy validate`\n',
      );
      return SANDBOX_FAILED_EXIT;
    }
    if (b.signal?.aborted) return 130;
    // The jailed ktl stopped first, with its own error (it said which): that is the status.
    if (jailEndedBuild && jailExit !== undefined && jailExit !== 0) return jailExit;
    return code;
  } finally {
    await gateway.close();
    rmSync(private_, { recursive: true, force: true });
  }
}
