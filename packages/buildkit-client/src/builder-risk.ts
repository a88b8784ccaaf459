/**
 * What a builder lets a build do to its host. BuildKit runs RUN steps in the daemon, so the
 * client's sandbox does not bound them: a step granted `network.host` shares the daemon's
 * network namespace (on a rootful engine, the host's loopback services), and one granted
 * `security.insecure` runs with every capability of the daemon (on a rootful engine, root on
 * the host). Two facts decide the risk: whether the daemon runs rootless, and which of those
 * entitlements it grants.
 */
import * as http from 'node:http';
import { Metadata } from '@grpc/grpc-js';
import { SolveRequest } from './gen/moby/buildkit/v1/control';
import { nodeCrypto } from './lazy-node';
import { parseAddress } from './transport/address';
import type { BuildkitConnection } from './transport/connect';
import { dialRaw, type TlsOptions } from './transport/upgrade';

/** The entitlements a Dockerfile build can ask for, in the order they are reported. */
export const RISKY_ENTITLEMENTS = ['network.host', 'security.insecure'] as const;
export type RiskyEntitlement = (typeof RISKY_ENTITLEMENTS)[number];

/** A frontend name no builder registers (BuildKit's names are like `dockerfile.v0`). */
const PROBE_FRONTEND = 'ktl.invalid/entitlement-probe';

export interface EntitlementProbe {
  /** What the builder grants, in RISKY_ENTITLEMENTS order. */
  readonly granted: RiskyEntitlement[];
  /** What it refuses, with the builder's own words. */
  readonly refused: Partial<Record<RiskyEntitlement, string>>;
  /** Entitlements the probe could not decide (an error that is not a refusal). */
  readonly unknown: Partial<Record<RiskyEntitlement, string>>;
}

/**
 * Which entitlements the builder grants. BuildKit checks a Solve's entitlements against its
 * own allow-list (`entitlements.WhiteList`) before it looks up the frontend, so a Solve asking
 * for one entitlement with a frontend no builder has is answered at once: "granting
 * entitlement X is not allowed by build daemon configuration" when refused, "invalid
 * frontend" when granted. Nothing is built. (A Solve with no frontend and no definition is
 * not answered until a session joins, so it cannot serve as the probe.)
 */
export async function probeEntitlements(
  conn: BuildkitConnection,
  timeoutMs = 5000,
): Promise<EntitlementProbe> {
  const granted: RiskyEntitlement[] = [];
  const refused: EntitlementProbe['refused'] = {};
  const unknown: EntitlementProbe['unknown'] = {};
  for (const e of RISKY_ENTITLEMENTS) {
    const ref = `ktl-entitlement-probe-${nodeCrypto().randomBytes(8).toString('hex')}`;
    const err = await new Promise<{ code: number; details: string } | undefined>((resolve) => {
      conn.control.solve(
        SolveRequest.fromPartial({ Ref: ref, Frontend: PROBE_FRONTEND, Entitlements: [e] }),
        new Metadata(),
        { deadline: Date.now() + timeoutMs },
        (error) => resolve(error ? { code: error.code, details: error.details } : undefined),
      );
    });
    if (err !== undefined && /invalid frontend/i.test(err.details)) granted.push(e);
    else if (err !== undefined && /not allowed by build daemon/i.test(err.details))
      refused[e] = err.details;
    else unknown[e] = err?.details || (err ? `gRPC status ${err.code}` : 'the probe solved');
  }
  return { granted, refused, unknown };
}

/**
 * A Docker engine's `SecurityOptions` (`GET /info`: `name=seccomp,profile=builtin`,
 * `name=rootless`, ...), or undefined when `address` is not a Docker engine or it does not
 * answer.
 */
export async function engineSecurityOptions(
  address: string,
  tls?: TlsOptions,
  timeoutMs = 5000,
): Promise<string[] | undefined> {
  const addr = parseAddress(address);
  if (addr.kind !== 'docker') return undefined;
  let sock: Awaited<ReturnType<typeof dialRaw>>;
  try {
    sock = await dialRaw(addr.engine, tls, timeoutMs);
  } catch {
    return undefined;
  }
  return new Promise((resolve) => {
    const req = http.request({
      createConnection: () => sock,
      method: 'GET',
      path: '/info',
      headers: { Host: 'docker', Connection: 'close' },
      timeout: timeoutMs,
    });
    const done = (v: string[] | undefined) => {
      req.destroy();
      resolve(v);
    };
    req.on('timeout', () => done(undefined));
    req.on('error', () => done(undefined));
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
        if (body.length > 4 * 1024 * 1024) done(undefined);
      });
      res.on('end', () => {
        if (res.statusCode !== 200) return done(undefined);
        try {
          const info = JSON.parse(body) as { SecurityOptions?: unknown };
          const opts = Array.isArray(info.SecurityOptions) ? info.SecurityOptions : [];
          done(opts.filter((o): o is string => typeof o === 'string'));
        } catch {
          done(undefined);
        }
      });
      res.on('error', () => done(undefined));
    });
    req.end();
  });
}

/** Whether a Docker engine's security options say it runs rootless. */
export function isRootlessEngine(securityOptions: readonly string[]): boolean {
  return securityOptions.some((o) => o.split(',').includes('name=rootless'));
}
