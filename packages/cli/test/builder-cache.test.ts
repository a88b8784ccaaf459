/**
 * `ktl builder ls|du|prune` with the built ./bin/ktl: against the rig's engine (registered as
 * skipped, with the reason, when the rig is down), and the refusals, which need no builder.
 * The rig is shared by the whole suite, so prune only ever touches records of a build made
 * here (filtered by a unique string in the RUN step), never the cache of other tests.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { ktl, readEnvFile } from './helpers';

const rigEnv = process.env.KTL_RIG_ENV_FILE ?? '/var/lib/ktl-rig/env';
const rig = readEnvFile(rigEnv);
const dockerHost = rig.KTL_RIG_DOCKER_HOST;
const base = rig.KTL_RIG_BASE_IMAGE;
const ready =
  dockerHost !== undefined && existsSync(dockerHost.replace('unix://', '')) && base !== undefined;
const rigTest = ready ? test : test.skip;
const why = ready
  ? ''
  : ` [skipped: the BuildKit rig is not up (${rigEnv}); run scripts/rig.sh up]`;

const dir = mkdtempSync(join(tmpdir(), 'ktl-cache-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const state = join(dir, 'state'); // no ktl-managed builder in the way
const env = {
  DOCKER_HOST: dockerHost ?? '',
  BUILDKIT_HOST: '',
  KTL_STATE_DIR: state,
  KTL_SANDBOX_DISABLE: '1',
  DOCKER_CONFIG: join(dir, 'docker-config'),
};
mkdirSync(env.DOCKER_CONFIG);
const nowhere = `unix://${join(dir, 'no-builder.sock')}`;

interface Rec {
  id: string;
  size: number;
  inUse: boolean;
  shared: boolean;
  description: string;
}
interface Du {
  records: Rec[];
  summary: { total: number; reclaimable: number; shared: number; private: number };
}
const du = (...args: string[]) => {
  const r = ktl(['builder', 'du', '--json', ...args], { env });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as Du;
};

/** Builds a Dockerfile whose RUN step is unique to this call; returns the marker. */
function uniqueBuild(): string {
  const mark = `ktlcache${randomBytes(6).toString('hex')}`;
  const ctx = join(dir, mark);
  mkdirSync(ctx);
  writeFileSync(
    join(ctx, 'Dockerfile'),
    `FROM ${base}\nRUN echo ${mark} > /mark && head -c 200000 /dev/urandom > /blob\n`,
  );
  // A local export: no image holds the layers, so the records are the cache's own.
  const r = ktl(['build', ctx, '-o', `type=local,dest=${join(dir, `${mark}-out`)}`], { env });
  expect(r.stderr.slice(-2000)).toMatch(/DONE|CACHED/);
  expect(r.code).toBe(0);
  return mark;
}

describe('ktl builder ls', () => {
  rigTest(`shows the candidates in order, the one selected, and its workers${why}`, () => {
    // A dead BUILDKIT_HOST comes first and is passed over: ls says why.
    const r = ktl(['builder', 'ls'], { env: { ...env, BUILDKIT_HOST: nowhere } });
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    const bk = lines.findIndex((l) => /^\s+BUILDKIT_HOST\s/.test(l));
    const dh = lines.findIndex((l) => /^\*\s+DOCKER_HOST\s/.test(l));
    expect(bk).toBeGreaterThan(0);
    expect(dh).toBeGreaterThan(bk);
    expect(lines[bk]).toMatch(/unreachable: no socket there/);
    expect(lines[dh]).toContain(`docker://${dockerHost} `);
    expect(lines[dh]).toMatch(/selected$/);
    expect(r.stdout).toMatch(
      new RegExp(`^selected: +docker://${dockerHost} \\(DOCKER_HOST\\)$`, 'm'),
    );
    expect(r.stdout).toMatch(/^transport: +engine-(upgrade|native)$/m);
    expect(r.stdout).toMatch(/^engine API: +1\.\d+$/m);
    expect(r.stdout).toMatch(/^workers: [1-9]/m);
    expect(r.stdout).toMatch(/^ {4}platforms: linux\/\w+/m);
    expect(r.stdout).toMatch(/^ {6}org\.mobyproject\.buildkit\.worker\.executor=/m);
  });

  rigTest(`--builder --json: that address only, with version, API and workers${why}`, () => {
    const r = ktl(['builder', 'ls', '--json', '--builder', `docker://${dockerHost}`], { env });
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    // The rig's engine is rootful and grants network.host (Docker's default), not
    // security.insecure; ktl asked the engine itself.
    expect(j.candidates).toEqual([
      {
        source: '--builder',
        address: `docker://${dockerHost}`,
        status: 'selected',
        rootless: false,
        rootlessBasis: expect.stringMatching(/^the engine's security options \(no name=rootless/),
        entitlements: ['network.host'],
        entitlementsRefused: ['security.insecure'],
      },
    ]);
    expect(j.selected).toMatchObject({ rootless: false, entitlements: ['network.host'] });
    expect(j.selected.address).toBe(`docker://${dockerHost}`);
    expect(['engine-upgrade', 'engine-native']).toContain(j.selected.transport);
    expect(j.selected.engineApiVersion).toMatch(/^1\.\d+$/);
    expect(typeof j.selected.buildkit.version).toBe('string');
    expect(j.selected.workers.length).toBeGreaterThan(0);
    expect(j.selected.workers[0].platforms.every((p: string) => /^linux\//.test(p))).toBe(true);
    expect(Object.keys(j.selected.workers[0].labels).length).toBeGreaterThan(0);
  });
});

describe('ktl builder du and prune on the rig', () => {
  rigTest(`du lists the records of a build, and the totals add up${why}`, () => {
    const mark = uniqueBuild();
    const mine = du('--filter', `description~=${mark}`);
    expect(mine.records.length).toBeGreaterThan(0);
    expect(mine.records.every((r) => r.description.includes(mark))).toBe(true);
    expect(mine.records.some((r) => r.size >= 200_000)).toBe(true);

    const all = du();
    expect(all.records.map((r) => r.id)).toEqual(
      expect.arrayContaining(mine.records.map((r) => r.id)),
    );
    const sized = all.records.filter((r) => r.size > 0);
    const sum = (rs: Rec[]) => rs.reduce((a, r) => a + r.size, 0);
    expect(all.summary.total).toBe(sum(sized));
    expect(all.summary.reclaimable).toBe(sum(sized.filter((r) => !r.inUse)));
    expect(all.summary.shared).toBe(sum(sized.filter((r) => r.shared)));
    expect(all.summary.private).toBe(all.summary.total - all.summary.shared);

    const text = ktl(['builder', 'du', '--filter', `description~=${mark}`], { env });
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^ID +RECLAIMABLE +SIZE +LAST ACCESSED$/m);
    expect(text.stdout).toContain(mine.records[0]!.id);
    expect(text.stdout).toMatch(/^Total: +\d/m);
    const verbose = ktl(['builder', 'du', '--verbose', '--filter', `description~=${mark}`], {
      env,
    });
    expect(verbose.stdout).toMatch(new RegExp(`^Description: +.*${mark}`, 'm'));
  });

  rigTest(
    `prune --filter id=: without --all only unused private records go, with --all the rest; du no longer lists them${why}`,
    () => {
      const mark = uniqueBuild();
      const before = du('--filter', `description~=${mark}`).records;
      expect(before.length).toBeGreaterThan(0);
      // Prune by id: engines (seen with Docker 26) match `description` only in DiskUsage.
      const pruneJson = (...args: string[]) => {
        const p = ktl(['builder', 'prune', '--force', '--json', ...args], { env });
        expect(p.stderr).toBe('');
        expect(p.code).toBe(0);
        return JSON.parse(p.stdout) as { records: Rec[]; reclaimed: number };
      };
      let reclaimed = 0;
      for (const rec of before) {
        // Without --all: a record shared with an image (or in use) stays.
        const r1 = pruneJson('--filter', `id=${rec.id}`);
        const stays = rec.shared || rec.inUse;
        expect(r1.records.map((r) => r.id)).toEqual(stays ? [] : [rec.id]);
        expect(du('--filter', `id=${rec.id}`).records.length).toBe(stays ? 1 : 0);
        // With --all, still scoped by the id: it goes.
        const r2 = pruneJson('--all', '--filter', `id=${rec.id}`);
        expect(r2.records.map((r) => r.id)).toEqual(stays ? [rec.id] : []);
        reclaimed += r1.reclaimed + r2.reclaimed;
      }
      // The RUN step wrote 200 kB of its own.
      expect(reclaimed).toBeGreaterThanOrEqual(200_000);
      expect(du('--filter', `description~=${mark}`).records).toEqual([]);

      // Text output: nothing left to remove.
      const p3 = ktl(['builder', 'prune', '--force', '--all', '--filter', `id=${before[0]!.id}`], {
        env,
      });
      expect(p3.code).toBe(0);
      expect(p3.stdout).toBe('Total reclaimed: 0B\n');
    },
  );
});

describe('ktl builder refusals', () => {
  test('prune without --force when stdin is not a terminal: exit 2, nothing asked or sent', () => {
    const r = ktl(['builder', 'prune', '--builder', nowhere], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^ERROR: refusing to prune without confirmation: stdin is not a terminal/,
    );
    expect(r.stderr).toMatch(/^hint: add --force/m);
    expect(r.stdout).toBe('');
  });

  test.each([
    [['--keep-storage', '10 gigs'], /^ERROR: invalid size "10 gigs"\nhint: .*128mb/],
    [['--keep-storage', '-5'], /^ERROR: invalid size "-5"/],
    [
      ['--filter', 'color=red'],
      /^ERROR: unknown filter "color" in "color=red"\nhint: filters are key=value/,
    ],
    [['--filter', 'until=soon'], /^ERROR: invalid duration "soon"/],
  ])('prune %j: exit 2 before any builder is asked', (args, message) => {
    const r = ktl(['builder', 'prune', '--force', '--builder', nowhere, ...args], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  test('du with a bad filter: exit 2', () => {
    const r = ktl(['builder', 'du', '--builder', nowhere, '--filter', 'type'], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^ERROR: filter "type" needs a value/);
  });

  test.each([
    ['du', []],
    ['prune', ['--force']],
  ])('%s with no builder answering: exit 3 with the reason', (cmd, args) => {
    const r = ktl(['builder', cmd, '--builder', nowhere, ...args], { env });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^ERROR: .*no socket there/);
    expect(r.stdout).toBe('');
  });

  test('ls --builder that does not answer: exit 3, the candidate listed as unreachable', () => {
    const r = ktl(['builder', 'ls', '--builder', nowhere], { env });
    expect(r.code).toBe(3);
    // MODE and ENTITLEMENTS are unknown (-) for a builder that does not answer.
    expect(r.stdout).toMatch(
      new RegExp(`--builder +${nowhere} +- +- +unreachable: no socket there`),
    );
    expect(r.stderr).toMatch(/^ERROR: the builder at .* does not answer\nhint: /);
  });

  test('ls --builder with an address that does not parse: exit 2', () => {
    const r = ktl(['builder', 'ls', '--builder', 'ftp://x'], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^ERROR: /);
  });
});
