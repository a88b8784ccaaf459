/**
 * The libraries as a user gets them: both packages packed with pnpm (as they would be
 * published), the tarballs installed with npm into a scratch project outside the workspace,
 * then used from ESM and CommonJS, run under the default policy and a policy file, and
 * type-checked as a consumer would (tsc, module nodenext). Packs the built dist/: the suite's
 * `pnpm test` builds first; a dist/ older than its sources fails here with the command to run.
 * Needs npm and the npm registry (zod is downloaded, or taken from npm's cache).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { FIXTURES, gate } from './helpers';

const ROOT = join(FIXTURES, '..', '..', '..', '..');
const PACKAGES = ['nsjail-config', 'sandbox-runner'] as const;
const LINUX_CI = join(ROOT, 'testdata', 'sandbox', 'linux-ci.cfg');
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

function tool(cmd: string, args: string[]): { ok: boolean; why: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 15_000 });
  if (r.error) return { ok: false, why: `${cmd} ${args.join(' ')}: ${r.error.message}` };
  if (r.status !== 0) {
    // npm's first error line names the cause (`npm error FetchError: request to ... failed`).
    const lines = r.stderr.split('\n').map((l) => l.trim());
    const cause = lines.find((l) => /Error\b/.test(l)) ?? lines.find(Boolean) ?? `exit ${r.status}`;
    return { ok: false, why: `${cmd} ${args.join(' ')} failed: ${cause}` };
  }
  return { ok: true, why: '' };
}

/** npm and pnpm present, the registry answering: else the whole file is skipped, with why. */
function packGate(): { ok: boolean; why: string } {
  for (const [cmd, args] of [
    ['pnpm', ['--version']],
    ['npm', ['--version']],
    ['npm', ['ping', '--fetch-timeout=10000', '--fetch-retries=0']],
  ] as const) {
    const g = tool(cmd, [...args]);
    if (!g.ok) return g;
  }
  return { ok: true, why: '' };
}

const pack = packGate();
const runtime = [gate('nsjail'), gate('bwrap')].find((g) => g.ok) ?? gate('bwrap');
const d = pack.ok ? describe : describe.skip;
const skipped = (name: string, why: string) => `${name} [skipped: ${why}]`;
const title = pack.ok ? 'packed tarballs installed with npm' : skipped('packed tarballs', pack.why);
const rt = (name: string) => (runtime.ok ? name : skipped(name, runtime.why));
const withRuntime = runtime.ok ? test : test.skip;

/** Newest modification time under dir (files only). */
function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) t = Math.max(t, statSync(join(e.parentPath, e.name)).mtimeMs);
  }
  return t;
}

let tmp: string;
let project: string;
const tarballs: Record<string, string> = {};
const timings: Record<string, number> = {};

function timed<T>(name: string, f: () => T): T {
  const t0 = Date.now();
  try {
    return f();
  } finally {
    timings[name] = Date.now() - t0;
  }
}

function node(args: string[]): Record<string, unknown> {
  const out = execFileSync(process.execPath, args, {
    cwd: project,
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  return JSON.parse(out.trim().split('\n').pop()!);
}

d(title, () => {
  beforeAll(() => {
    for (const p of PACKAGES) {
      const dir = join(ROOT, 'packages', p);
      const built = existsSync(join(dir, 'dist')) ? newest(join(dir, 'dist')) : 0;
      const inputs = Math.max(
        newest(join(dir, 'src')),
        statSync(join(dir, 'package.json')).mtimeMs,
      );
      if (built < inputs || (p === 'sandbox-runner' && built < statSync(LINUX_CI).mtimeMs)) {
        throw new Error(`packages/${p}/dist is older than its sources: run pnpm -r build first`);
      }
    }
    tmp = mkdtempSync(join(tmpdir(), 'ktl-pack-'));
    project = join(tmp, 'project');
    mkdirSync(project);
    for (const p of PACKAGES) {
      timed(`pack ${p}`, () =>
        execFileSync('pnpm', ['pack', '--pack-destination', tmp], {
          cwd: join(ROOT, 'packages', p),
          stdio: 'pipe',
          timeout: 60_000,
        }),
      );
    }
    for (const f of readdirSync(tmp)) {
      const p = PACKAGES.find((name) => f.startsWith(`ktl-${name}-`) && f.endsWith('.tgz'));
      if (p) tarballs[p] = join(tmp, f);
    }
    writeFileSync(
      join(project, 'package.json'),
      JSON.stringify({ name: 'scratch', version: '1.0.0', private: true }),
    );
    timed('npm install', () =>
      execFileSync(
        'npm',
        [
          'install',
          '--no-audit',
          '--no-fund',
          '--prefer-offline',
          '--ignore-scripts',
          '--loglevel=error',
          ...PACKAGES.map((p) => tarballs[p]!),
        ],
        { cwd: project, stdio: 'pipe', timeout: 90_000 },
      ),
    );
    cpSync(join(FIXTURES, 'consumer'), project, { recursive: true });
    // The consumer's Node types: the workspace's @types/node, where a project would have its own.
    mkdirSync(join(project, 'node_modules', '@types'), { recursive: true });
    symlinkSync(
      join(ROOT, 'node_modules', '@types', 'node'),
      join(project, 'node_modules', '@types', 'node'),
    );
  }, 120_000);

  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    process.stderr.write(
      `pack-install timings (ms): ${Object.entries(timings)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}\n`,
    );
  });

  test.each(PACKAGES)('the %s tarball: README, LICENSE, dist; every export shipped', (p) => {
    const list = execFileSync('tar', ['-tzf', tarballs[p]!], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map((f) => f.replace(/^package\//, ''));
    expect(list).toEqual(expect.arrayContaining(['README.md', 'LICENSE', 'package.json']));
    expect(list.filter((f) => !/^(dist\/|README\.md$|LICENSE$|package\.json$)/.test(f))).toEqual(
      [],
    );
    const installed = join(project, 'node_modules', '@ktl', p);
    const manifest = readFileSync(join(installed, 'package.json'), 'utf8');
    expect(manifest).not.toContain('ktl-source');
    expect(manifest).not.toContain('workspace:');
    const targets: string[] = [];
    const walk = (v: unknown): void => {
      if (typeof v === 'string') targets.push(v);
      else if (v && typeof v === 'object') Object.values(v).forEach(walk);
    };
    const pkg = JSON.parse(manifest);
    walk([pkg.exports, pkg.main, pkg.module, pkg.types]);
    expect(targets.length).toBeGreaterThan(3);
    for (const t of targets) expect([t, list.includes(t.replace(/^\.\//, ''))]).toEqual([t, true]);
    expect(readFileSync(join(installed, 'LICENSE'), 'utf8')).toContain('Apache License');
  });

  test('ESM: both entry points load without zod; defaultPolicy() is linux-ci.cfg', () => {
    const out = timed('esm', () => node(['--import', './no-zod.mjs', 'esm.mjs', LINUX_CI]));
    expect(out).toEqual({
      exports: ['function', 'function', 'function'],
      defaultIsLinuxCi: true,
      roundTrip: true,
    });
  });

  test('CommonJS: require() both; zod only with @ktl/nsjail-config/schema', () => {
    const out = timed('cjs', () => node(['cjs.cjs']));
    expect(out).toEqual({
      exports: ['function', 'function', 'function'],
      defaultName: 'linux-ci',
      zodAfterMain: false,
      schemaType: 'object',
      zodAfterSchema: true,
    });
  });

  withRuntime(rt("ESM: run('/bin/echo', ['hi']) under the default policy"), () => {
    const out = timed('esm run', () =>
      node(['--import', './no-zod.mjs', 'esm.mjs', LINUX_CI, 'run']),
    );
    expect(out.run).toEqual({ exitCode: 0, stdout: 'hi\n', runtime: expect.any(String) });
  });

  withRuntime(rt('CommonJS: run under a policy file'), () => {
    const out = timed('cjs run', () => node(['cjs.cjs', join(FIXTURES, 'test.cfg')]));
    // test.cfg's hostname, not the default policy's.
    expect(out.run).toEqual({ exitCode: 0, stdout: 'jail\n' });
  });

  test('tsc --noEmit (module nodenext) on an ESM and a CommonJS consumer', () => {
    const r = timed('tsc', () =>
      spawnSync(process.execPath, [TSC, '--noEmit', '-p', 'tsconfig.json'], {
        cwd: project,
        encoding: 'utf8',
        timeout: 60_000,
      }),
    );
    expect([r.status, r.stdout + r.stderr]).toEqual([0, '']);
  });
});
