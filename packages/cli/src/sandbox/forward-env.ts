/**
 * Environment variables the jailed ktl needs to rebuild the same options from its spec: the
 * ones the command line names (`--secret id=X,env=VAR`, `--build-arg KEY` without a value).
 * Nothing else of the host environment crosses over.
 */
import type { BuildOptions } from '../build/options';

export function forwardedEnv(
  o: BuildOptions,
  rawBuildArgs: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Record<string, string> {
  const names = new Set<string>();
  for (const s of o.secrets) if ('env' in s.source) names.add(s.source.env);
  for (const a of rawBuildArgs) if (!a.includes('=')) names.add(a);
  const out: Record<string, string> = {};
  for (const n of names) {
    const v = env[n];
    if (v !== undefined) out[n] = v;
  }
  return out;
}
