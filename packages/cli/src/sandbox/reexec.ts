/**
 * `ktl build` inside the sandbox: the outer ktl starts the jail (src/sandbox/jail.ts; maybe
 * already started by src/early.ts), starts the BuildKit gateway (the jail never sees the
 * builder's own socket) and hands the jailed ktl its build spec once the builder is found. The
 * jailed ktl serves the build session; the outer one sends the Solve, relays the exit status,
 * cancels on Ctrl-C and tears everything down.
 */
import { realpathSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  type AuthAnswerer,
  type BuildkitAddress,
  newSessionId,
  startGateway,
  type TlsOptions,
} from '@ktl/buildkit-client';
import { ExitCode } from '../build/exit-codes';
import { EndedElsewhere } from '../build/run';
import { mark } from '../timing';
import { BindPlanError } from './binds';
import { recordExportRoots } from './export-record';
import { INNER_SPEC_FILE, INNER_SPEC_VERSION, type InnerSpec } from './inner-spec';
import type { Jail, JailEnd, JailInputs } from './jail';
import { JAIL_GATEWAY_DIR, SANDBOX_FAILED_EXIT } from './jail-paths';
import { moveIntoPlace, withStagedOutputs } from './staged-outputs';

export { JAIL_GATEWAY_DIR, SANDBOX_FAILED_EXIT };

export interface SandboxedBuild extends JailInputs {
  /** A jail already started for these inputs (src/early.ts), else one is started here. */
  jail?: Jail | undefined;
  /**
   * The real builder, being found by the outer ktl: the jail starts meanwhile (its start-up is
   * the longest step), and gets its build spec once this resolves. A rejection stops the jail
   * and is rethrown.
   */
  upstream: Promise<BuildkitAddress>;
  /** The TLS the builder is reached with: the gateway, out here, dials it so. */
  upstreamTls?: Promise<TlsOptions | undefined>;
  /**
   * Sends the Solve (out here, on the real builder) naming the session the jailed ktl serves;
   * resolves to ktl build's exit status. `signal` aborts when the jail fails or on Ctrl-C.
   */
  solve: (
    sessionId: string,
    signal: AbortSignal,
    outerDirs: ReadonlyMap<string, number>,
  ) => Promise<number>;
  /** Answers the registry credential calls the jailed ktl relays through the gateway. */
  auth?: AuthAnswerer;
  stderr: (text: string) => void;
  signal?: AbortSignal;
}

export async function runBuildInSandbox(b: SandboxedBuild): Promise<number> {
  mark('outer: sandbox start');
  // Loaded only when needed: the policy and runner modules are not small.
  const jail = b.jail ?? (await (await import('./jail')).startJail(b));
  let code: number | undefined;
  try {
    code = await buildIn(jail, b);
    return code;
  } finally {
    // A build that failed leaves no empty output directory made for its binds.
    jail.cleanUp({ keepOutputs: code === 0 });
  }
}

/**
 * The builder found is reached through a unix socket that no mask covers, under a directory
 * bound into the jail (an engine ktl did not know of when the binds were planned): the build
 * stops here rather than give the jail the engine.
 */
function refuseReachableEngine(up: BuildkitAddress, jail: Jail): void {
  const path =
    up.kind === 'unix'
      ? up.path
      : up.kind === 'docker' && up.engine.kind === 'unix'
        ? up.engine.path
        : undefined;
  if (path === undefined) return;
  let real: string;
  let id: string;
  try {
    const st = statSync(path, { bigint: true });
    real = realpathSync(path);
    id = `${st.dev}:${st.ino}`;
  } catch {
    return; // not there: nothing to reach
  }
  if (jail.engines.some((e) => `${e.dev}:${e.ino}` === id)) return; // masked where bound
  const bind = jail.planned.find(
    (p) => p.pin.kind === 'dir' && (real === p.src || real.startsWith(`${p.src}/`)),
  );
  if (bind)
    throw new BindPlanError(
      `the builder's socket ${path} is inside ${bind.src} (${bind.why}), which is bound into the sandbox`,
      'name a directory that does not hold the engine socket, or set DOCKER_HOST/BUILDKIT_HOST (or --builder) so ktl knows the socket and masks it',
    );
}

async function buildIn(jail: Jail, b: SandboxedBuild): Promise<number> {
  // The jail gets the build session and nothing else of the builder: the Solve is sent from
  // out here, built from the validated command line.
  const gateway = await startGateway({
    upstream: b.upstream,
    ...(b.upstreamTls ? { tls: b.upstreamTls } : {}),
    socketPath: join(jail.dir, 'buildkit.sock'),
    sessionOnly: true,
    ...(b.auth ? { auth: b.auth } : {}),
    log: (line) => {
      if (b.settings.logs || line.startsWith('refused')) b.stderr(`[sandbox] gateway: ${line}\n`);
    },
  });
  mark('outer: gateway up');
  try {
    b.stderr(
      `Running ktl build inside the sandbox (policy: ${jail.policyLabel}, runtime: ${jail.runtime === 'bwrap' ? 'bubblewrap' : jail.runtime}). Set KTL_SANDBOX_DISABLE=1 to opt out.\n`,
    );
    if (b.settings.logs) {
      for (const p of jail.planned)
        b.stderr(`[sandbox] bind ${p.src} -> ${p.dst} (${p.readonly ? 'ro' : 'rw'}, ${p.why})\n`);
      for (const m of jail.masked) b.stderr(`[sandbox] masked ${m.dst} (${m.why})\n`);
    }
    jail.logTo((line) => b.stderr(`${line}\n`));
    if (b.settings.logs) {
      const names = Object.keys(b.forwardEnv ?? {});
      if (names.length > 0) b.stderr(`[sandbox] env forwarded: ${names.join(', ')}\n`);
    }
    const sessionId = newSessionId();
    // Written once the builder is known (the jail is already starting by then), renamed into
    // place whole: the jailed ktl waits for it.
    const handOver = (up: BuildkitAddress) => {
      refuseReachableEngine(up, jail);
      const prefix = up.kind === 'docker' ? 'docker://unix://' : 'unix://';
      const spec: InnerSpec = {
        version: INNER_SPEC_VERSION,
        // The builder's TLS is the outer ktl's business: not even its file names go in.
        options: withStagedOutputs({ ...b.options, builderTls: undefined }, jail.staged),
        sessionId,
        gateway: `${prefix}${JAIL_GATEWAY_DIR}/buildkit.sock`,
        logs: b.settings.logs,
        bound: b.sandboxBinds.map((v) => v.split(':')[1] ?? '').filter(Boolean),
        writable: [
          ...jail.planned.filter((p) => !p.readonly).map((p) => p.dst),
          ...jail.staged.map((s) => dirname(s.staged)),
        ],
        // The jailed ktl checks (with --sandbox-logs) that the real builder's socket is not
        // there, nor ktl's install beyond its bundles.
        mustNotSee: [
          ...(up.kind === 'docker' && up.engine.kind === 'unix'
            ? [up.engine.path]
            : up.kind === 'unix'
              ? [up.path]
              : []),
          // A file of ktl's install beside its bundles: the jail sees the bundles only.
          join(jail.bundleDir, '..', 'package.json'),
        ],
        pins: jail.planned
          .filter((p) => !jail.emptied.has(p.dst))
          .map((p) => ({
            dst: p.dst,
            dev: String(p.pin.dev),
            ino: String(p.pin.ino),
          })),
        engines: jail.engines.map((e) => ({
          path: e.path,
          dev: String(e.dev),
          ino: String(e.ino),
        })),
      };
      const file = join(jail.dir, INNER_SPEC_FILE);
      writeFileSync(`${file}.partial`, JSON.stringify(spec), { mode: 0o600 });
      renameSync(`${file}.partial`, file);
    };
    // The jail and the Solve run together: the builder waits for the session while the jailed
    // ktl finishes starting up.
    const buildStop = new AbortController();
    const onUserAbort = () => buildStop.abort();
    b.signal?.addEventListener('abort', onUserAbort, { once: true });
    let building = true;
    let jailEndedBuild = false;
    const ended = jail.ended.then((end: JailEnd) => {
      if (end.kind === 'stopped' || (end.kind === 'exited' && end.exitCode === 0)) return end;
      // The session is gone (or never came): the build cannot go on. What ended it is
      // reported below, not as a cancellation.
      if (building) jailEndedBuild = true;
      buildStop.abort(new EndedElsewhere('the sandboxed half of ktl build ended'));
      return end;
    });
    let code = 1;
    let end: JailEnd;
    try {
      // No builder: rethrown once the jail is stopped (below: it has nothing to serve).
      handOver(await b.upstream);
      mark('outer: spec handed over');
      code = await b.solve(sessionId, buildStop.signal, jail.outerDirs);
      mark('outer: build done');
      if (code === 0) {
        // Where this build's local exports went: later plans judge links there as its own.
        recordExportRoots(
          process.env,
          jail.planned
            .filter((p) => /\boutput (local|oci)\b/.test(p.why) && !p.readonly)
            .map((p) => ({ path: p.src, dev: p.pin.dev, ino: p.pin.ino })),
        );
      }
      if (code === 0 && jail.staged.length > 0) {
        try {
          moveIntoPlace(jail.staged);
        } catch (e) {
          b.stderr(`ERROR: build succeeded but ${(e as Error).message}\n`);
          code = ExitCode.OUTPUT_FAILED;
        }
      }
    } finally {
      building = false;
      b.signal?.removeEventListener('abort', onUserAbort);
      // Failed or canceled: the jail has nothing left to serve; it is stopped before its way
      // out is closed, so it does not report a lost session on top of the real error. Built:
      // everything it writes is written (the daemon ends each export only once the jailed ktl
      // has answered it: a tar's stream when its file is renamed into place, a local export's
      // FIN once its files are; and the Solve only after its exports), so it is stopped and not
      // waited for: the kernel takes ~20 ms to tear a Node process and its namespaces down, and
      // bwrap goes with ktl (--die-with-parent) if ktl exits first.
      jail.stop();
      end = code === 0 ? { kind: 'stopped' } : await ended;
      await gateway.close();
    }
    mark(code === 0 ? 'outer: jail stopped once built' : 'outer: runtime exited');
    if (end.kind === 'failed') {
      if (end.code === 'E_TIMEOUT') {
        b.stderr(`ktl: ${end.message}\n`);
        return 124;
      }
      // The runtime failed before ktl started inside it: its log says why, unasked.
      for (const line of end.runtimeLog) if (!end.message.includes(line)) b.stderr(`${line}\n`);
      b.stderr(
        `${end.message
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
    if (jailEndedBuild && end.kind === 'exited' && end.exitCode !== 0) return end.exitCode;
    return code;
  } finally {
    await gateway.close();
  }
}
