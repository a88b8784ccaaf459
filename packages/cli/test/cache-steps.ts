/**
 * The cache tests' shared steps: a context whose one RUN step writes a random stamp, the
 * builder's records of that step (found by its echo), pruning exactly those, and reading from
 * a build's log whether the step ran or was a cache hit.
 */
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from '@jest/globals';

/** `docker -H ENGINE ARGS...` on the engine under test. */
export type DockerCli = (...args: string[]) => SpawnSyncReturns<string>;

/** A context whose RUN step echoes `token` and writes a random stamp to /stamp. */
export function stampContext(dir: string, base: string, token: string): string {
  const d = join(dir, `ctx-${token}`);
  mkdirSync(d, { recursive: true });
  writeFileSync(
    join(d, 'Dockerfile'),
    `FROM ${base}\nRUN echo ${token} && cat /proc/sys/kernel/random/uuid > /stamp\n`,
  );
  return d;
}

/** The ids of the builder's cache records of the step that echoes `token`. */
export function recordsOf(docker: DockerCli, token: string): string[] {
  const du = docker('buildx', 'du', '--verbose');
  expect(du.status).toBe(0);
  const ids: string[] = [];
  let id = '';
  for (const line of du.stdout.split('\n')) {
    const m = /^ID:\s+(\S+)/.exec(line);
    if (m) id = m[1]!;
    if (line.startsWith('Description:') && line.includes(`echo ${token} `)) ids.push(id);
  }
  return ids;
}

/**
 * Removes exactly the step's records, so only a cache import can bring its result back. The
 * builder may still hold a record of the build that just ended for a moment (prune then skips
 * it, as in use, and says nothing): a few tries, a second apart, before calling it a failure.
 */
export function pruneStep(docker: DockerCli, token: string): void {
  let ids = recordsOf(docker, token);
  expect(ids.length).toBeGreaterThan(0);
  for (let attempt = 0; attempt < 5 && ids.length > 0; attempt++) {
    if (attempt > 0) spawnSync('sleep', ['1']);
    for (const id of ids) {
      const r = docker('builder', 'prune', '-f', '--filter', `id=${id}`);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    }
    ids = recordsOf(docker, token);
  }
  expect(ids).toEqual([]);
}

/** The step ran: BuildKit logged its echo (`#6 0.123 TOKEN`). */
export const ran = (stderr: string, token: string) =>
  new RegExp(`^#\\d+ \\d+\\.\\d+ ${token}$`, 'm').test(stderr);

/** The step was a cache hit: its vertex is reported CACHED. */
export const cachedStep = (stderr: string, token: string) =>
  new RegExp(
    `^#(\\d+) \\[2/2\\] RUN echo ${token} [^\\n]*\\n(?:[^\\n]*\\n)*?#\\1 CACHED$`,
    'm',
  ).test(stderr);

/** The stamp a build of stampContext wrote into its local export `out` (checked for shape). */
export function stampOf(out: string): string {
  return expectStamp(readFileSync(join(out, 'stamp'), 'utf8'));
}

/** A stamp as the step writes it: a random UUID and a newline. */
export function expectStamp(stamp: string): string {
  expect(stamp).toMatch(/^[0-9a-f-]{36}\n$/);
  return stamp;
}

/**
 * Builds `ctx` again with `--cache-from CACHE_FROM` into `out`: the step must come back from the
 * cache (reported CACHED, its echo not run) with the first build's `stamp`.
 */
export function expectRebuiltFromCache(
  build: (args: string[]) => { code: number | null; stderr: string },
  ctx: string,
  cacheFrom: string,
  out: string,
  token: string,
  stamp: string,
): void {
  const r = build([
    ctx,
    '--progress',
    'plain',
    '--cache-from',
    cacheFrom,
    '-o',
    `type=local,dest=${out}`,
  ]);
  expect(r.code).toBe(0);
  expect(cachedStep(r.stderr, token)).toBe(true);
  expect(ran(r.stderr, token)).toBe(false);
  expect(readFileSync(join(out, 'stamp'), 'utf8')).toBe(stamp);
}
