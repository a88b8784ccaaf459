/**
 * How much a builder lets a build do to its host: whether the daemon runs rootless, and which
 * of the risky entitlements it grants (@ktl/buildkit-client's builder-risk says why these
 * two). `ktl builder ls`, `ktl sandbox doctor` and the warning of `ktl build` read it here.
 */
import { statSync } from 'node:fs';
import {
  type BuildkitConnection,
  engineSecurityOptions,
  isRootlessEngine,
  parseAddress,
  probeEntitlements,
  type TlsOptions,
} from '@ktl/buildkit-client';

export interface BuilderMode {
  /** Rootless (the daemon holds an unprivileged user's rights) or rootful. */
  readonly rootless: boolean;
  /** How that is known; "treated as rootful" when nothing says. */
  readonly rootlessBasis: string;
}

export interface BuilderRisk extends BuilderMode {
  /** What the daemon grants of network.host and security.insecure. */
  readonly entitlements: string[];
  readonly entitlementsRefused: string[];
  /** Entitlements the probe could not decide, with why (omitted when none). */
  readonly entitlementsUnknown?: Record<string, string>;
}

/**
 * A Docker engine says it (its security options hold `name=rootless`). buildkitd does not:
 * a unix socket owned by a user other than root is taken to mean it runs as that user, as a
 * daemon run as root makes its socket root's. Anything else is treated as rootful.
 */
export async function builderMode(
  address: string,
  tls?: TlsOptions,
  timeoutMs = 5000,
): Promise<BuilderMode> {
  const addr = parseAddress(address);
  if (addr.kind === 'docker') {
    const opts = await engineSecurityOptions(address, tls, timeoutMs);
    if (!opts)
      return {
        rootless: false,
        rootlessBasis: 'the engine did not answer GET /info: treated as rootful',
      };
    const rootless = isRootlessEngine(opts);
    return {
      rootless,
      rootlessBasis: `the engine's security options (${rootless ? 'name=rootless' : `no name=rootless: ${opts.join('; ') || 'none'}`})`,
    };
  }
  if (addr.kind === 'unix') {
    try {
      const uid = statSync(addr.path).uid;
      return uid === 0
        ? { rootless: false, rootlessBasis: "buildkitd does not say; its socket is root's" }
        : {
            rootless: true,
            rootlessBasis: `buildkitd does not say; its socket belongs to uid ${uid}, so it runs as that user`,
          };
    } catch (e) {
      return {
        rootless: false,
        rootlessBasis: `buildkitd does not say and its socket cannot be looked at (${(e as NodeJS.ErrnoException).code}): treated as rootful`,
      };
    }
  }
  return { rootless: false, rootlessBasis: 'buildkitd over tcp does not say: treated as rootful' };
}

/** The builder's mode and the entitlements it grants (an empty Solve per entitlement). */
export async function builderRisk(
  conn: BuildkitConnection,
  tls?: TlsOptions,
  timeoutMs = 5000,
): Promise<BuilderRisk> {
  const [mode, ent] = await Promise.all([
    builderMode(conn.address, tls ?? conn.tls, timeoutMs),
    probeEntitlements(conn, timeoutMs),
  ]);
  const unknown = Object.entries(ent.unknown);
  return {
    ...mode,
    entitlements: ent.granted,
    entitlementsRefused: Object.keys(ent.refused),
    ...(unknown.length > 0 ? { entitlementsUnknown: Object.fromEntries(unknown) } : {}),
  };
}

/** `rootless, grants network.host` / `rootful, grants network.host, security.insecure`. */
export function describeRisk(r: BuilderRisk): string {
  const grants =
    r.entitlements.length > 0
      ? `grants ${r.entitlements.join(', ')}`
      : 'grants neither network.host nor security.insecure';
  const unknown = r.entitlementsUnknown
    ? `; could not tell: ${Object.keys(r.entitlementsUnknown).join(', ')}`
    : '';
  return `${r.rootless ? 'rootless' : 'rootful'}, ${grants}${unknown}`;
}

/** What a rootful builder's entitlements expose, in a sentence per entitlement. */
export function rootfulExposure(entitlements: readonly string[]): string {
  const parts: string[] = [];
  if (entitlements.includes('network.host'))
    parts.push(
      "a RUN step granted network.host shares the host's network, its 127.0.0.1 services included",
    );
  if (entitlements.includes('security.insecure'))
    parts.push(
      'a RUN step granted security.insecure runs as root on the host with every capability',
    );
  return parts.join('; ');
}
