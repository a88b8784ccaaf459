/**
 * The jailed half of a sandboxed `ktl build` (started by sandbox/reexec.ts inside the jail).
 * It is the only part of ktl that reads what the build names on the host — the context, named
 * contexts, the Dockerfile, secret files, ssh agents — and the only part that writes local/tar
 * exports: it serves the build's session, through the gateway, to the builder (the session's
 * registry credential calls it relays to the outer ktl, which answers them). The outer ktl, outside, sends the Solve and renders progress; this process cannot
 * call the builder's Control API at all (the gateway passes the session and nothing else).
 * The options are the ones the outer ktl validated, from /run/ktl/build.json: no CLI
 * framework and no second parse.
 */
import {
  type FSWatcher,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  watch,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { authRelay, connectForSession, serveDockerfileSession } from '@ktl/buildkit-client';
import { toExportSpecs } from './build/outputs';
import { readSecrets } from './build/secrets';
import { BuildUsageError } from './build/usage-error';
import { exitWhenFlushed } from './exit';
import {
  INNER_SPEC_FILE,
  INNER_SPEC_VERSION,
  type InnerSpec,
  outputPaths,
  pinMismatches,
  unboundOutputs,
} from './sandbox/inner-spec';
import { JAIL_GATEWAY_DIR, SANDBOX_FAILED_EXIT } from './sandbox/jail-paths';
import { selfCheckLines } from './sandbox/self-check';
import { mark } from './timing';

const stderr = (s: string) => {
  process.stderr.write(s);
};

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(String(c)));
  return Buffer.concat(chunks);
}

/** How long the jailed ktl waits for the outer one to hand over the build (finding a builder
 * that does not answer takes a few seconds at most; the outer ktl stops the jail on failure). */
const SPEC_WAIT_MS = 120_000;

/**
 * The spec, once the outer ktl has renamed it into place (it starts the jail first and finds
 * the builder meanwhile). Woken by inotify where the jail allows it, else by a 10 ms poll.
 */
export async function waitForSpec(dir: string, timeoutMs = SPEC_WAIT_MS): Promise<InnerSpec> {
  const file = join(dir, INNER_SPEC_FILE);
  const read = (): InnerSpec | undefined => {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    const spec = JSON.parse(text) as InnerSpec;
    if (spec.version !== INNER_SPEC_VERSION)
      throw new Error(`unknown spec version ${String(spec.version)}`);
    return spec;
  };
  const now = read();
  if (now) return now;
  return new Promise<InnerSpec>((resolve, reject) => {
    let watcher: FSWatcher | undefined;
    const done = (f: () => void) => {
      clearInterval(poll);
      clearTimeout(timer);
      watcher?.close();
      f();
    };
    const check = () => {
      try {
        const spec = read();
        if (spec) done(() => resolve(spec));
      } catch (e) {
        done(() => reject(e));
      }
    };
    const poll = setInterval(check, 10);
    const timer = setTimeout(
      () =>
        done(() =>
          reject(
            new Error(
              `no build spec in ${dir} after ${timeoutMs} ms: the outer ktl never handed the build over (it stops this jail when it fails; run the build again, with --sandbox-logs)`,
            ),
          ),
        ),
      timeoutMs,
    );
    try {
      watcher = watch(dir, check);
      watcher.on('error', () => watcher?.close());
    } catch {
      watcher = undefined; // no inotify in this jail: the poll does it
    }
    check();
  });
}

async function serve(): Promise<number> {
  mark('inner: modules loaded');
  let spec: InnerSpec;
  try {
    spec = await waitForSpec(JAIL_GATEWAY_DIR);
  } catch (e) {
    stderr(`ktl (in the sandbox): cannot read the build spec: ${(e as Error).message}\n`);
    return SANDBOX_FAILED_EXIT;
  }
  mark('inner: spec read');
  // What is mounted must be what the outer ktl checked, before anything is served.
  const moved = pinMismatches(spec.pins, (p) => {
    try {
      return statSync(p, { bigint: true });
    } catch {
      return undefined;
    }
  });
  if (moved.length > 0) {
    stderr(
      `ERROR: the sandbox's binds are not what was checked (a path on the command line changed between the check and the mount; is something rewriting the checkout?): ${moved.join('; ')}\n`,
    );
    return SANDBOX_FAILED_EXIT;
  }
  const o = spec.options;
  if (spec.logs)
    for (const l of selfCheckLines(
      spec.mustNotSee,
      spec.bound,
      spec.engines,
      Object.values(o.ssh ?? {}),
    ))
      stderr(`${l}\n`);
  const stray = unboundOutputs(outputPaths(o), spec.writable);
  if (stray.length > 0) {
    stderr(
      `ERROR: ${stray.join(', ')}: not bound writable into the sandbox (a ktl bug: the outer ktl plans these binds); refusing to write where the result would vanish\n`,
    );
    return SANDBOX_FAILED_EXIT;
  }
  let tmp: string | undefined;
  try {
    const secrets = readSecrets(o, process.env);
    let dockerfile = o.dockerfile;
    if (dockerfile === '-') {
      tmp = mkdtempSync(join(tmpdir(), 'ktl-dockerfile-'));
      dockerfile = join(tmp, 'Dockerfile');
      writeFileSync(dockerfile, await readAll(process.stdin));
    }
    // No registry credentials in here: each Auth call of the daemon is relayed to the outer
    // ktl, on the gateway's socket, and answered out there.
    const auth = authRelay(spec.gateway.replace(/^(docker:\/\/)?unix:\/\//, ''));
    // Sessions only (the Solve goes out from the outer ktl): through the gateway's /session.
    const conn = await connectForSession(spec.gateway);
    const session = await serveDockerfileSession(
      conn,
      spec.sessionId,
      {
        contextDir: o.contextDir,
        dockerfile,
        namedContexts: o.buildContexts,
        // A process of its own with absolute paths only: the context walker may look entries
        // up relative to the directory it holds open (the faster of its two ways).
        contextLookup: 'cwd',
        exports: await toExportSpecs(o),
        onWarning: (m: string) => stderr(`WARNING: ${m}\n`),
        // Only the local ones matter here: their directories are served as content stores.
        cacheImports: o.cacheFrom,
        cacheExports: o.cacheTo,
        secrets,
        ssh: o.ssh,
        auth,
      },
      (method, err) =>
        stderr(`ktl (in the sandbox): ${method}: ${(err as Error).message ?? err}\n`),
    );
    mark('inner: session attached');
    // Served until the outer ktl closes the gateway after the build.
    await session.done;
    await conn.close();
    return 0;
  } catch (e) {
    if (e instanceof BuildUsageError) {
      stderr(`ERROR: ${e.message}\n${e.hint ? `hint: ${e.hint}\n` : ''}`);
      return 2;
    }
    stderr(`ktl (in the sandbox): ${(e as Error).message}\n`);
    return SANDBOX_FAILED_EXIT;
  } finally {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
}

/** Entry point (dist/boot.cjs inner): serves the session, then exits with its status. */
export function main(): void {
  // Sockets are not waited for to wind down; stdout/stderr are flushed first.
  void serve().then(exitWhenFlushed);
}
