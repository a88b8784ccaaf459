/**
 * The shared test rig (scripts/rig.sh up): a Docker engine with embedded BuildKit, a loopback
 * registry and a base image. Integration tests register with test.skip and the reason in their
 * name when it is not there.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as net from 'node:net';

export const RIG_ENV_FILE = process.env.KTL_RIG_ENV_FILE ?? '/var/lib/ktl-rig/env';

export interface Rig {
  readonly dockerHost: string;
  readonly registry: string | undefined;
  readonly baseImage: string | undefined;
  /** docker-buildx plugin binary, the reference client. */
  readonly buildx: string | undefined;
  /** DOCKER_CONFIG for buildx (its builder store). */
  readonly dockerConfig: string | undefined;
  readonly dockerCli: string | undefined;
}

export type RigProbe = { ok: true; rig: Rig } | { ok: false; reason: string };

function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*(?:export\s+)?([A-Z0-9_]+)=(.*)$/.exec(line);
    if (!m) continue;
    let v = m[2]!.trim();
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) {
      v = v.slice(1, -1);
    }
    out[m[1]!] = v;
  }
  return out;
}

function canDial(path: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = net.connect({ path });
    s.setTimeout(2000, () => {
      s.destroy();
      resolve('timed out');
    });
    s.once('connect', () => {
      s.destroy();
      resolve(undefined);
    });
    s.once('error', (e) => resolve(e.message));
  });
}

export async function probeRig(): Promise<RigProbe> {
  if (!existsSync(RIG_ENV_FILE))
    return { ok: false, reason: `no ${RIG_ENV_FILE}; run scripts/rig.sh up` };
  const env = parseEnvFile(readFileSync(RIG_ENV_FILE, 'utf8'));
  const dockerHost = env.KTL_RIG_DOCKER_HOST;
  if (!dockerHost?.startsWith('unix://')) {
    return { ok: false, reason: `KTL_RIG_DOCKER_HOST missing in ${RIG_ENV_FILE}` };
  }
  const err = await canDial(dockerHost.slice('unix://'.length));
  if (err) return { ok: false, reason: `rig engine ${dockerHost} does not answer: ${err}` };
  return {
    ok: true,
    rig: {
      dockerHost,
      registry: env.KTL_RIG_REGISTRY,
      baseImage: env.KTL_RIG_BASE_IMAGE,
      buildx: env.KTL_RIG_BUILDX,
      dockerConfig: env.KTL_RIG_DOCKER_CONFIG,
      dockerCli: env.KTL_RIG_DOCKER_CLI,
    },
  };
}

export function skipReason(p: RigProbe): string {
  return p.ok ? '' : ` [skipped: ${p.reason}]`;
}
