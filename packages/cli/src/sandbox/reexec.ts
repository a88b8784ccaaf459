/**
 * `ktl build` inside the sandbox: the outer ktl plans binds from the command line, starts the
 * BuildKit gateway (the jail never sees the builder's own socket), and re-executes itself in
 * the jail with KTL_IN_SANDBOX=1. The inner ktl does the build; the outer one only relays its
 * exit status, cancels on Ctrl-C and tears everything down.
 */
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BuildkitAddress, solvePolicy, startGateway } from '@ktl/buildkit-client';
import type { Bind, MountPt } from '@ktl/nsjail-config';
import { resolveRuntime, run, SandboxError } from '@ktl/sandbox-runner';
import type { BuildOptions } from '../build/options';
import { mark } from '../timing';
import { type PlannedBind, planBuildBinds } from './binds';
import { INNER_SPEC_FILE, type InnerSpec } from './inner-spec';
import { JAIL_GATEWAY_DIR, SANDBOX_FAILED_EXIT } from './jail-paths';
import { loadSandboxPolicy } from './policy';
import { HIDDEN_ENV } from './self-check';
import type { SandboxSettings } from './settings';

export { JAIL_GATEWAY_DIR, SANDBOX_FAILED_EXIT };

export interface SandboxedBuild {
  /** The command line, parsed and validated: binds are planned from it, the jail builds it. */
  options: BuildOptions;
  /** --sandbox-bind values (HOST:GUEST[:ro|rw]). */
  sandboxBinds: readonly string[];
  cwd: string;
  settings: SandboxSettings;
  /** The real builder, found by the outer ktl. */
  upstream: BuildkitAddress;
  /** Entitlements the command line asked for (network.host, security.insecure). */
  entitlements: readonly string[];
  /** Image names the command line asked for (-t), the only ones an export may use. */
  imageNames?: readonly string[];
  /** Registry cache refs the command line exports to (--cache-to), the only ones allowed. */
  cacheExportRefs?: readonly string[];
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

/** The jailed half's entry point (dist/inner.cjs next to the bundle this code is in). */
function innerEntry(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const p of [join(here, 'inner.cjs'), join(here, '..', 'dist', 'inner.cjs')])
    if (existsSync(p)) return p;
  throw new Error(`ktl is not built: no inner.cjs near ${here} (run pnpm build)`);
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
  const gateway = await startGateway({
    upstream: b.upstream,
    socketPath,
    checkSolve: solvePolicy({
      entitlements: b.entitlements,
      requireNetworkNone: b.settings.hermetic,
      ...(b.imageNames ? { imageNames: b.imageNames } : {}),
      cacheExportRefs: b.cacheExportRefs ?? [],
    }),
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
    const prefix = b.upstream.kind === 'docker' ? 'docker://unix://' : 'unix://';
    const gatewayAddress = `${prefix}${JAIL_GATEWAY_DIR}/buildkit.sock`;
    const spec: InnerSpec = {
      version: 1,
      options: { ...b.options, builder: gatewayAddress },
      logs: b.settings.logs,
      bound: b.sandboxBinds.map((v) => v.split(':')[1] ?? '').filter(Boolean),
      writable: planned.filter((p) => !p.readonly).map((p) => p.dst),
    };
    writeFileSync(join(private_, INNER_SPEC_FILE), JSON.stringify(spec), { mode: 0o600 });
    const env = {
      BUILDKIT_HOST: gatewayAddress,
      KTL_CACHE_DIR: b.cacheDir,
      // The inner ktl checks (with --sandbox-logs) that the real builder's socket is not there.
      ...(b.upstream.kind === 'docker' && b.upstream.engine.kind === 'unix'
        ? { [HIDDEN_ENV]: b.upstream.engine.path }
        : {}),
      ...(b.upstream.kind === 'unix' ? { [HIDDEN_ENV]: b.upstream.path } : {}),
      HOME: '/tmp',
      // Resolved credentials only (no helpers run inside); an empty config when there are none.
      DOCKER_CONFIG: `${JAIL_GATEWAY_DIR}/docker`,
      ...b.forwardEnv,
      ...(process.env.TERM ? { TERM: process.env.TERM } : {}),
      ...(process.env.KTL_TIMING ? { KTL_TIMING: process.env.KTL_TIMING } : {}),
      ...(process.env.NO_COLOR ? { NO_COLOR: process.env.NO_COLOR } : {}),
    };
    const command = [innerEntry()];
    const options = {
      policy,
      runtime: b.settings.runtime,
      binds,
      env,
      cwd: b.cwd,
      stdio: 'inherit' as const,
      logs: b.settings.logs ? ('stream' as const) : ('on-failure' as const),
      onLog: (line: string) => b.stderr(`${line}\n`),
      ...(b.signal ? { cancelSignal: b.signal } : {}),
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
    try {
      return (await run(node, command, options)).exitCode ?? 0;
    } catch (e) {
      const err = SandboxError.from(e);
      switch (err.code) {
        case 'E_EXIT':
        case 'E_SIGNAL':
          // The inner ktl already said what went wrong; relay its status.
          return err.exitCode ?? 1;
        case 'E_CANCELED':
          return 130;
        case 'E_TIMEOUT':
          b.stderr(`ktl: ${err.message}\n`);
          return 124;
        default:
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
    }
  } finally {
    mark('outer: runtime exited');
    await gateway.close();
    rmSync(private_, { recursive: true, force: true });
    mark('outer: gateway closed');
  }
}
