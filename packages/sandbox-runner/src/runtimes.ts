/** Finding nsjail and bubblewrap: KTL_NSJAIL_BIN / KTL_BWRAP_BIN first, then PATH. */
import { execFile } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { promisify } from 'node:util';
import { type RuntimeName, SandboxError } from './errors';
import type { RuntimeChoice } from './options';

const run = promisify(execFile);

export const RUNTIME_ENV: Record<RuntimeName, string> = {
  nsjail: 'KTL_NSJAIL_BIN',
  bwrap: 'KTL_BWRAP_BIN',
};

export interface RuntimeInfo {
  readonly name: RuntimeName;
  readonly path: string;
  /** How it was found: the environment variable or PATH. */
  readonly via: string;
  /** `0.8.0` for bwrap; nsjail prints no version (undefined). */
  readonly version: string | undefined;
  /** Why the version is unknown, or why the binary did not answer. */
  readonly note?: string;
}

export interface DetectedRuntimes {
  readonly nsjail: RuntimeInfo | undefined;
  readonly bwrap: RuntimeInfo | undefined;
}

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Looks a program up in PATH (never relative entries: they would depend on the caller cwd). */
export function which(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!isAbsolute(dir)) continue;
    const p = join(dir, name);
    if (executable(p)) return p;
  }
  return undefined;
}

/** Where a runtime is; throws E_NO_RUNTIME when its env var names something unusable. */
export function locate(
  name: RuntimeName,
  env: NodeJS.ProcessEnv = process.env,
): { path: string; via: string } | undefined {
  const override = env[RUNTIME_ENV[name]];
  if (override !== undefined && override !== '') {
    if (!isAbsolute(override) || !executable(override)) {
      throw new SandboxError(
        `${RUNTIME_ENV[name]}=${override} is not an executable file (absolute path expected)`,
        { code: 'E_NO_RUNTIME', hint: `unset ${RUNTIME_ENV[name]} or point it at ${name}` },
      );
    }
    return { path: override, via: RUNTIME_ENV[name] };
  }
  const p = which(name, env);
  return p === undefined ? undefined : { path: p, via: 'PATH' };
}

const INSTALL =
  'install bubblewrap (`apt-get install bubblewrap`), or build nsjail from source ' +
  '(https://github.com/google/nsjail; no distribution packages it) and put it on PATH or in ' +
  'KTL_NSJAIL_BIN';

/** The runtime to use; `auto` prefers nsjail. Never falls back to running unjailed. */
export function resolveRuntime(
  choice: RuntimeChoice,
  env: NodeJS.ProcessEnv = process.env,
): { name: RuntimeName; path: string } {
  const order: RuntimeName[] = choice === 'auto' ? ['nsjail', 'bwrap'] : [choice];
  for (const name of order) {
    const found = locate(name, env);
    if (found) return { name, path: found.path };
  }
  const what =
    choice === 'auto'
      ? 'neither nsjail (KTL_NSJAIL_BIN or PATH) nor bwrap (KTL_BWRAP_BIN or PATH) was found'
      : `${choice} was not found (${RUNTIME_ENV[choice]} or PATH)`;
  throw new SandboxError(`no sandbox runtime: ${what}; refusing to run the command unjailed`, {
    code: 'E_NO_RUNTIME',
    hint: INSTALL,
  });
}

async function probe(name: RuntimeName, path: string, via: string): Promise<RuntimeInfo> {
  if (name === 'bwrap') {
    try {
      const { stdout } = await run(path, ['--version'], { timeout: 5000 });
      const m = /bubblewrap\s+(\S+)/.exec(stdout);
      return { name, path, via, version: m?.[1] ?? (stdout.trim() || undefined) };
    } catch (e) {
      return { name, path, via, version: undefined, note: `--version failed: ${String(e)}` };
    }
  }
  try {
    // nsjail has no --version; --help proves the binary runs (it exits 0 after the usage).
    await run(path, ['--help'], { timeout: 5000 });
    return { name, path, via, version: undefined, note: 'nsjail does not report a version' };
  } catch (e) {
    const err = e as { code?: unknown; stderr?: string };
    if (typeof err.code === 'number') {
      return { name, path, via, version: undefined, note: 'nsjail does not report a version' };
    }
    return { name, path, via, version: undefined, note: `does not run: ${String(e)}` };
  }
}

/** Which runtimes exist here, with versions. */
export async function detectRuntimes(
  env: NodeJS.ProcessEnv = process.env,
): Promise<DetectedRuntimes> {
  const one = async (name: RuntimeName) => {
    let found: { path: string; via: string } | undefined;
    try {
      found = locate(name, env);
    } catch (e) {
      const path = env[RUNTIME_ENV[name]] ?? '';
      const note = SandboxError.is(e) ? e.shortMessage : String(e);
      return { name, path, via: RUNTIME_ENV[name], version: undefined, note } as RuntimeInfo;
    }
    return found ? probe(name, found.path, found.via) : undefined;
  };
  const [nsjail, bwrap] = await Promise.all([one('nsjail'), one('bwrap')]);
  return { nsjail, bwrap };
}
