import { effective, type NsJailConfig } from '@ktl/nsjail-config';

/** nsjail's value of a field (set or default); every schema field has a default or is optional. */
export function eff<K extends keyof NsJailConfig>(
  p: NsJailConfig,
  key: K,
): NonNullable<NsJailConfig[K]> {
  return effective(p, key) as NonNullable<NsJailConfig[K]>;
}
