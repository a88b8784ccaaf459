import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter } from 'node:path';

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
