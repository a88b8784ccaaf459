import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const ktlBin = join(repoRoot, 'bin', 'ktl');

export interface KtlResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI exactly as a user would (`./bin/ktl ...`). */
export function ktl(
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; timeout?: number } = {},
): KtlResult {
  const r = spawnSync(ktlBin, args, {
    cwd: opts.cwd ?? repoRoot,
    env: { ...process.env, ...opts.env },
    encoding: 'utf8',
    input: opts.input ?? '',
    timeout: opts.timeout ?? 60_000,
    // Node's default (1 MiB) kills the child past it: `builder du --json` on a busy rig is more.
    maxBuffer: 64 * 1024 * 1024,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The rig's env file (`KEY=VALUE` lines written by scripts/rig.sh), or the compat engine's. */
export const RIG_ENV_FILE = process.env.KTL_RIG_ENV_FILE ?? '/var/lib/ktl-rig/env';

/** The variables of a rig env file; empty when the file is not there (the rig is down). */
export function readEnvFile(file: string = RIG_ENV_FILE): Record<string, string> {
  if (!existsSync(file)) return {};
  return Object.fromEntries(
    readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => /^[A-Z_][A-Z0-9_]*=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}
