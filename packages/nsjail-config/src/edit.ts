/** Immutable edits: policies are shared values, so helpers return new objects. */
import type { MountPt, NsJailConfig } from './schema/nsjail';

export interface Bind {
  src: string;
  dst: string;
  readonly?: boolean;
  /** Fail the jail when src is missing (default true). */
  mandatory?: boolean;
}

/** Appends bind mounts after the policy's own (later mounts cover earlier ones). */
export function withBinds(policy: NsJailConfig, binds: readonly Bind[]): NsJailConfig {
  const added: MountPt[] = binds.map((b) => ({
    src: b.src,
    dst: b.dst,
    is_bind: true,
    rw: !(b.readonly ?? false),
    ...(b.mandatory === false ? { mandatory: false } : {}),
  }));
  return { ...policy, mount: [...(policy.mount ?? []), ...added] };
}

/** Sets environment variables (`K=V` entries), replacing earlier entries for the same K. */
export function withEnv(policy: NsJailConfig, env: Readonly<Record<string, string>>): NsJailConfig {
  const keys = new Set(Object.keys(env));
  const kept = (policy.envar ?? []).filter((e) => !keys.has(e.split('=')[0]!));
  return { ...policy, envar: [...kept, ...Object.entries(env).map(([k, v]) => `${k}=${v}`)] };
}
