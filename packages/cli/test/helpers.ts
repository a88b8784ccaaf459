import { spawnSync } from 'node:child_process';
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
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {},
): KtlResult {
  const r = spawnSync(ktlBin, args, {
    cwd: opts.cwd ?? repoRoot,
    env: { ...process.env, ...opts.env },
    encoding: 'utf8',
    input: opts.input ?? '',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
