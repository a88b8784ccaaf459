/**
 * The warning of a build that asks a rootful builder for a risky entitlement. The sandbox
 * confines the build client; RUN steps execute in the daemon, and on a rootful one
 * `network.host` gives a step the host's network (its 127.0.0.1 services included) and
 * `security.insecure` makes it root on the host. Said once per build, before it starts.
 */
import type { TlsOptions } from '@ktl/buildkit-client';
import { builderMode, rootfulExposure } from '../builder/risk';
import type { BuildOptions } from './options';

/** The risky entitlements a build asks for (`--network host` asks for network.host). */
export function riskyAsks(o: Pick<BuildOptions, 'allow' | 'network'>): string[] {
  const asked = new Set(o.allow);
  if (o.network === 'host') asked.add('network.host');
  return ['network.host', 'security.insecure'].filter((e) => asked.has(e));
}

export async function warnRootfulRisk(
  o: Pick<BuildOptions, 'allow' | 'network'>,
  address: string,
  write: (text: string) => void,
  tls?: TlsOptions,
): Promise<void> {
  const asked = riskyAsks(o);
  if (asked.length === 0) return;
  const mode = await builderMode(address, tls);
  if (mode.rootless) return;
  const rootless: string[] = [];
  if (asked.includes('network.host'))
    rootless.push("network.host is a network namespace of its own, without the host's loopback");
  if (asked.includes('security.insecure'))
    rootless.push('security.insecure is root only inside its user namespace');
  write(
    `WARNING: this build asks for ${asked.join(' and ')} and the builder ${address} runs rootful: ` +
      `${rootfulExposure(asked)}. The sandbox confines the build client, not the builder. ` +
      `\`ktl builder start\` starts a rootless engine, where ${rootless.join(' and ')}.\n`,
  );
}
