/** `--secret` values read on the side that serves the build session (the jail, when sandboxed). */
import { readFileSync } from 'node:fs';
import type { BuildOptions } from './options';
import { BuildUsageError } from './usage-error';

export function readSecrets(
  o: BuildOptions,
  env: Readonly<Record<string, string | undefined>>,
): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  for (const s of o.secrets) {
    if ('env' in s.source) {
      const v = env[s.source.env];
      if (v === undefined) {
        throw new BuildUsageError(
          '--secret',
          `id=${s.id}`,
          `environment variable ${s.source.env} is not set`,
        );
      }
      out[s.id] = Buffer.from(v);
    } else {
      try {
        out[s.id] = readFileSync(s.source.file);
      } catch (e) {
        throw new BuildUsageError(
          '--secret',
          `id=${s.id}`,
          `cannot read ${s.source.file}: ${(e as Error).message}`,
        );
      }
    }
  }
  return out;
}
