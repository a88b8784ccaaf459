/** nsjail's effective value of a field: what was set, else the proto2 default. */
import type { MessageDescriptor } from './schema/builders';
import { type NsJailConfig, policyDescriptor } from './schema/nsjail';

export function effective<K extends keyof NsJailConfig>(
  policy: NsJailConfig,
  key: K,
): NsJailConfig[K] {
  return effectiveIn(
    policy as Record<string, unknown>,
    policyDescriptor,
    key as string,
  ) as NsJailConfig[K];
}

export function effectiveIn(
  value: Record<string, unknown>,
  desc: MessageDescriptor,
  key: string,
): unknown {
  const v = value[key];
  if (v !== undefined) return v;
  const f = desc.byName.get(key);
  if (!f) throw new Error(`no field ${key} in ${desc.fullName}`);
  if (f.type === 'bytes' && f.default === '') return new Uint8Array();
  return f.default;
}
