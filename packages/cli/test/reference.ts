/**
 * ktl against the reference client on the rig: the same build run by `ktl build` (on the
 * host and in the sandbox) and by `docker buildx build` on the same engine, for tests that
 * compare the results entry by entry (../../buildkit-client/test/manifest.ts). Each test
 * registers with the gate of its mode: `test.skip` with the reason in its name when the rig,
 * buildx or bubblewrap is missing.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '@jest/globals';
import { type KtlResult, ktl, readEnvFile } from './helpers';

export const rig = readEnvFile();
export const dockerHost = rig.KTL_RIG_DOCKER_HOST;
export const baseImage = rig.KTL_RIG_BASE_IMAGE;
const buildxBin = rig.KTL_RIG_BUILDX ?? '/usr/libexec/docker/cli-plugins/docker-buildx';

const rigDown =
  dockerHost === undefined || !existsSync(dockerHost.replace('unix://', '')) || !baseImage
    ? ' [skipped: the BuildKit rig is not up; run scripts/rig.sh up]'
    : '';
const noBuildx = existsSync(buildxBin) ? '' : ` [skipped: docker buildx is not at ${buildxBin}]`;
const bwrap = spawnSync('sh', ['-c', 'command -v bwrap'], { encoding: 'utf8' }).stdout.trim();

export interface Gate {
  readonly test: typeof test | typeof test.skip;
  /** Appended to the test's name: empty, or why it is skipped. */
  readonly why: string;
}

const gate = (why: string): Gate => ({ test: why ? test.skip : test, why });

/** The rig with buildx: for tests that compare with the reference. */
export const withBuildx: Gate = gate(rigDown || noBuildx);

export interface Mode {
  readonly label: string;
  readonly sandboxed: boolean;
  readonly env: Record<string, string>;
  readonly gate: Gate;
}

/** ktl on the host and in the sandbox (bubblewrap, the default policy). */
export const modes: readonly Mode[] = [
  {
    label: 'on the host',
    sandboxed: false,
    env: { KTL_SANDBOX_DISABLE: '1' },
    gate: withBuildx,
  },
  {
    label: 'in the sandbox',
    sandboxed: true,
    env: { KTL_SANDBOX_DISABLE: '', KTL_SANDBOX_CONFIG: '' },
    gate: gate(rigDown || noBuildx || (bwrap ? '' : ' [skipped: bwrap is not installed]')),
  },
];

/** A DOCKER_CONFIG with nothing in it (no credentials, no buildx builder state). */
const noAuth = mkdtempSync(join(tmpdir(), 'ktl-ref-config-'));
mkdirSync(noAuth, { recursive: true });

/** `ktl build ARGS` on the rig's engine. */
export function ktlBuild(
  args: readonly string[],
  mode: Mode,
  opts: { env?: Record<string, string>; cwd?: string; timeout?: number } = {},
): KtlResult {
  return ktl(['build', ...args], {
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    ...(opts.timeout ? { timeout: opts.timeout } : {}),
    env: {
      DOCKER_HOST: dockerHost ?? '',
      BUILDKIT_HOST: '',
      DOCKER_CONFIG: noAuth,
      ...mode.env,
      ...opts.env,
    },
  });
}

/** `docker buildx build ARGS` on the rig's engine (its default builder, the docker driver). */
export function buildx(
  args: readonly string[],
  opts: { env?: Record<string, string>; cwd?: string } = {},
): KtlResult {
  const r = spawnSync(buildxBin, ['build', '--progress=plain', ...args], {
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    env: {
      ...process.env,
      DOCKER_HOST: dockerHost ?? '',
      DOCKER_CONFIG: rig.KTL_RIG_DOCKER_CONFIG ?? noAuth,
      ...opts.env,
    },
    encoding: 'utf8',
    timeout: 120_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Throws with the client's output unless it exited 0. */
export function ok(r: KtlResult, what: string): KtlResult {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}:\n${r.stderr.slice(-4000)}`);
  return r;
}
