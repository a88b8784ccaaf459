/**
 * Recorded Status streams (and errors) of real builds on the rig engine, stored as JSON with
 * bytes as {$bytes: base64} and int64 as {$bigint}; loaded back into StatusResponse objects.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BuildkitError, type BuildkitErrorDetail } from '../src/errors';
import type { StatusResponse } from '../src/gen/moby/buildkit/v1/control';

const dir = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'status');
const DATE_KEYS = new Set(['started', 'completed', 'timestamp']);

export interface Recording {
  statuses: StatusResponse[];
  error: BuildkitError | undefined;
}

export function loadRecording(name: string): Recording {
  const raw = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8'), (k, v) => {
    if (v && typeof v === 'object' && '$bytes' in v) return Buffer.from(v.$bytes, 'base64');
    if (v && typeof v === 'object' && '$bigint' in v) return BigInt(v.$bigint);
    if (DATE_KEYS.has(k) && typeof v === 'string') return new Date(v);
    return v;
  }) as {
    statuses: StatusResponse[];
    error?: { message: string; details: BuildkitErrorDetail[] };
  };
  return {
    statuses: raw.statuses,
    error: raw.error
      ? new BuildkitError(raw.error.message, { code: 'E_SOLVE', details: raw.error.details })
      : undefined,
  };
}
