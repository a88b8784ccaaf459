import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, readdirSync, statSync } from 'node:fs';
import { delimiter, isAbsolute } from 'node:path';

/**
 * A directory the tests may read only when `.ci/run` (or the developer) names it in an
 * environment variable; never a path of this machine. `reason` says why it is not there.
 */
export function dirFromEnv(name: string, why: string): { dir?: string; reason: string } {
  const value = process.env[name];
  if (!value) return { reason: `${name} is not set (${why})` };
  if (!isAbsolute(value)) return { reason: `${name}=${value} is not an absolute path` };
  try {
    if (statSync(value).isDirectory()) return { dir: value, reason: '' };
    return { reason: `${name}=${value} is not a directory` };
  } catch {
    return { reason: `${name}=${value} does not exist` };
  }
}

/** nsjail's own example policies (`*.cfg` in KTL_NSJAIL_EXAMPLES), or why there are none. */
export function nsjailExamples(): { dir?: string; files: string[]; reason: string } {
  const { dir, reason } = dirFromEnv(
    'KTL_NSJAIL_EXAMPLES',
    "the folder of nsjail's example policies; .ci/run sets it when ../shared/nsjail-configs exists",
  );
  if (!dir) return { files: [], reason };
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cfg'))
    .sort();
  return files.length > 0
    ? { dir, files, reason: '' }
    : { files, reason: `KTL_NSJAIL_EXAMPLES=${dir} holds no .cfg files` };
}

/** The nsjail binary to compare against: KTL_NSJAIL_BIN, else `nsjail` on PATH. */
export function findNsjail(): { path?: string; reason: string } {
  const fromEnv = process.env.KTL_NSJAIL_BIN;
  const candidates = fromEnv
    ? [fromEnv]
    : (process.env.PATH ?? '').split(delimiter).map((d) => join(d, 'nsjail'));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return { path: c, reason: '' };
    } catch {}
  }
  return {
    reason: fromEnv
      ? `KTL_NSJAIL_BIN=${fromEnv} is not executable`
      : 'no nsjail binary on PATH and KTL_NSJAIL_BIN unset (nsjail is packaged nowhere reachable here)',
  };
}

/** Asks nsjail's own loader whether it accepts a policy file. */
export function nsjailAccepts(nsjail: string, file: string): { accepted: boolean; log: string } {
  const r = spawnSync(nsjail, ['-q', '--config', file, '--', '/bin/true'], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  const log = `${r.stderr ?? ''}`;
  return {
    accepted:
      !/Couldn't parse configuration|failed to parse as either|Config file .* is empty|Couldn't read config file/.test(
        log,
      ),
    log,
  };
}

export { execFileSync };
