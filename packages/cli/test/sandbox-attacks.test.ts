/**
 * The sandbox boundary, tested as the attacker: a hostile repository (a git work tree) full of
 * symlinks into a fake home directory that holds canaries (an SSH key, a kubeconfig, registry
 * credentials) and a root-only file under /etc, built for real (`./bin/ktl build` on the rig,
 * default policy, bubblewrap) from inside the checkout, from a parent directory with relative
 * paths and from elsewhere with absolute paths. A refused command line must exit 2 naming the
 * link; whatever happens, no canary may show up in ktl's output or in what the build wrote,
 * and nothing may appear in the home directory or the other host directories around.
 *
 * The rule under test (README, "What crosses into the jail"; src/sandbox/resolve.ts, binds.ts):
 * a symlink inside the repository may only lead inside it.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  accessSync,
  constants,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { testEngines } from '../../buildkit-client/test/engines';
import { type KtlResult, ktl, RIG_ENV_FILE, readEnvFile } from './helpers';

// ---------------------------------------------------------------------------------------------
// Gate: the rig (answering), bubblewrap, Linux.

const rigEnv = readEnvFile();
const [rigEngine] = await testEngines();
const dockerHost = rigEnv.KTL_RIG_DOCKER_HOST ?? '';
const rigSock = dockerHost.replace(/^unix:\/\//, '');
const baseImage = rigEnv.KTL_RIG_BASE_IMAGE ?? '';
const which = (bin: string) =>
  spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).stdout.trim();
const bwrap = process.env.KTL_BWRAP_BIN || which('bwrap');
// With nsjail installed as well, auto would pick it: name bubblewrap then (else auto picks it).
const nsjailToo = Boolean(process.env.KTL_NSJAIL_BIN || which('nsjail'));
const down =
  process.platform !== 'linux'
    ? 'the sandbox runs on Linux only'
    : rigEngine?.down
      ? rigEngine.down.replace(/^ \[skipped: (.*)\]$/, '$1')
      : !dockerHost || !baseImage
        ? `no rig in ${RIG_ENV_FILE}; run scripts/rig.sh up`
        : !bwrap
          ? 'no bubblewrap on PATH (apt-get install bubblewrap)'
          : '';
const why = down ? ` [skipped: ${down}]` : '';
const rigTest = down ? test.skip : test;

// ---------------------------------------------------------------------------------------------
// The scene: a fake home with canaries, a hostile repository, harmless host directories.

const token = () => randomBytes(12).toString('hex');
const canary = {
  ssh: `ssh-canary-${token()}`,
  kube: `kube-canary-${token()}`,
  registryPassword: `registry-canary-${token()}`,
  etc: `etc-canary-${token()}`,
};
const registryAuth = Buffer.from(`ktl:${canary.registryPassword}`).toString('base64');
const canaries = [canary.ssh, canary.kube, canary.registryPassword, registryAuth, canary.etc];

// Made only when the tests run (jest runs no afterAll when every test is skipped).
const base = down
  ? join(tmpdir(), 'ktl-attack-not-made')
  : realpathSync(mkdtempSync(join(tmpdir(), 'ktl-attack-')));
const H = join(base, 'home');
const H2 = join(base, 'h2');
const hostDir = join(base, 'hostdir');
const elsewhere = join(base, 'elsewhere');
const L = join(base, 'layout');
const outs = join(base, 'out');
const R = join(base, 'repos', 'x');
const etcCanary = `/etc/ktl-canary-${token()}`;
/** Host directories in which nothing may appear (recursively compared before and after). */
const watched = [H, H2, hostDir, elsewhere, L];

/** Whether this user can make a root-only canary in /etc (decided when tests are registered). */
const etcWritable = (() => {
  try {
    accessSync('/etc', constants.W_OK);
    return true;
  } catch {
    return false;
  }
})();
let etcCanaryMade = false;
const helpers: ChildProcess[] = [];

/** A Dockerfile that takes everything it can: context, secrets, ssh, the named contexts. */
const hostile = (names: readonly string[]) =>
  [
    `FROM ${baseImage} AS b`,
    'RUN --mount=type=secret,id=npm cat /run/secrets/npm > /npm || true',
    'RUN --mount=type=secret,id=s cat /run/secrets/s > /s || true',
    'RUN --mount=type=ssh,id=x ls -la "$SSH_AUTH_SOCK" > /ssh 2>&1 || true',
    'FROM scratch',
    'COPY . /ctx',
    'COPY --from=b /npm /s /ssh /',
    ...names.map((n) => `COPY --from=${n} / /n-${n}`),
    '',
  ].join('\n');

const write = (p: string, text: string, mode?: number) => {
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, text, mode === undefined ? undefined : { mode });
};
const link = (target: string, p: string) => {
  mkdirSync(dirname(p), { recursive: true });
  symlinkSync(target, p);
};

function setUp(): void {
  write(join(H, '.ssh', 'id_ed25519'), `${canary.ssh}\n`, 0o600);
  // First line: a Dockerfile parser that read it would quote it in its error.
  write(join(H, '.kube', 'config'), `${canary.kube}: x\napiVersion: v1\n`, 0o600);
  write(
    join(H, '.docker', 'config.json'),
    JSON.stringify({ auths: { 'registry.canary.invalid': { auth: registryAuth } } }),
    0o600,
  );
  write(join(H2, 'harmless.txt'), 'harmless h2\n');
  mkdirSync(hostDir);
  mkdirSync(elsewhere);
  mkdirSync(outs);
  try {
    writeFileSync(etcCanary, `${canary.etc}\n`, { mode: 0o600, flag: 'wx' });
    etcCanaryMade = true;
  } catch {
    etcCanaryMade = false;
  }

  // The hostile repository.
  mkdirSync(R, { recursive: true });
  expect(spawnSync('git', ['init', '-q', R]).status).toBe(0);
  write(join(R, 'app', 'a.txt'), 'app file\n');
  write(join(R, 'app', 'Dockerfile'), hostile([]));
  write(join(R, 'Dockerfile'), hostile([]));
  for (const names of [['assets'], ['a'], ['e'], ['x']])
    write(join(R, 'df', `${names.join('-')}.Dockerfile`), hostile(names));
  write(
    join(R, 'df', 'meta.Dockerfile'),
    [
      `FROM ${baseImage} AS b`,
      `RUN mkdir /o && ln -s ${hostDir} /o/meta && echo built > /o/built.txt`,
      'FROM scratch',
      'COPY --from=b /o/ /',
      '',
    ].join('\n'),
  );
  write(join(R, 'docker', 'Dockerfile.real'), 'FROM scratch\nCOPY . /ctx\n');
  write(join(R, 'real-assets', 'inside.txt'), 'inside the repo\n');
  mkdirSync(join(R, 'sub'));
  // Links out of the repository.
  link(H, join(R, 'assets'));
  link(H, join(R, 'ctx-home'));
  link(join(H, '.ssh', 'id_ed25519'), join(R, '.npmrc'));
  link(join(H, '.kube', 'config'), join(R, 'docker', 'Dockerfile'));
  write(join(R, 'kube-ctx', 'a.txt'), 'x\n');
  link(join(H, '.kube', 'config'), join(R, 'kube-ctx', 'Dockerfile'));
  link(rigSock, join(R, 'agent.sock'));
  link('../../home', join(R, 'assets-rel'));
  link('sub/../../../home', join(R, 'assets-dots'));
  link(`/proc/self/root${H}`, join(R, 'assets-proc'));
  link(H, join(R, 'sub-home'));
  link('hop-b', join(R, 'hop-a'));
  link(H, join(R, 'hop-b'));
  link('../../outside-link', join(R, 'hop-out'));
  link(H, join(base, 'outside-link'));
  link(etcCanary, join(R, 'etc-secret'));
  link(H, join(R, 'out-link'));
  link(hostDir, join(R, 'meta-link'));
  // Links that stay inside.
  link('real-assets', join(R, 'assets-inside'));
  link('../x/real-assets', join(R, 'assets-back'));
  // For the race: `assets` is swapped between a real directory and a link to the home.
  write(join(R, 'race', 'assets', 'harmless.txt'), 'harmless race\n');
  link(H, join(R, 'race', 'assets.link'));
  write(join(R, 'race2', 'sub', '.ssh', 'harmless.txt'), 'harmless race2\n');
  link(H, join(R, 'race2', 'sub.link'));
  // The user's own layout: a checkout reached through a link, and an agent link beside it.
  link(R, join(L, 'checkout'));
  link(rigSock, join(base, 'agent-layout.sock'));
}

beforeAll(() => {
  if (!down) setUp();
});
afterAll(() => {
  for (const c of helpers) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (etcCanaryMade) rmSync(etcCanary, { force: true });
  rmSync(base, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// Running ktl and checking that nothing leaked.

const env = {
  DOCKER_HOST: dockerHost,
  KTL_SANDBOX_DISABLE: '',
  KTL_SANDBOX_CONFIG: '',
  KTL_NSJAIL_BIN: '',
  HOME: H,
  DOCKER_CONFIG: join(H, '.docker'),
  KTL_CACHE_DIR: join(base, 'ktl-cache'),
  // ktl records where local exports went here (links inside them are the build's, not yours).
  KTL_STATE_DIR: join(base, 'ktl-state'),
  SSH_AUTH_SOCK: '',
};
const runtime = nsjailToo ? ['--sandbox-runtime', 'bwrap'] : [];
const BANNER =
  'Running ktl build inside the sandbox (policy: embedded default, runtime: bubblewrap)';

/** Every regular file under `dir` (not following links), and whether any is a socket. */
function filesUnder(dir: string): { path: string; text: string }[] {
  const out: { path: string; text: string }[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.isFile()) out.push({ path: p, text: readFileSync(p, 'latin1') });
      else if (st.isSocket()) out.push({ path: p, text: '<a socket>' });
    }
  };
  if (existsSync(dir)) walk(dir);
  return out;
}

/** A listing of `dir` to compare: name, type, size, mtime, link target. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let names: string[];
    try {
      names = readdirSync(d).sort();
    } catch {
      return;
    }
    for (const name of names) {
      const p = join(d, name);
      const st = lstatSync(p);
      const kind = st.isDirectory() ? 'd' : st.isSymbolicLink() ? `l:${readlinkSync(p)}` : 'f';
      out.push(`${p} ${kind} ${st.isDirectory() ? '' : st.size} ${st.mtimeMs}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}
const snapshots = () => Object.fromEntries(watched.map((d) => [d, snapshot(d)]));

/** What leaked into ktl's output or into `outDirs`: [where, canary] pairs (empty is good). */
function leaks(r: KtlResult, outDirs: readonly string[]): string[] {
  const found: string[] = [];
  for (const c of canaries) {
    if (r.stdout.includes(c)) found.push(`stdout: ${c}`);
    if (r.stderr.includes(c)) found.push(`stderr: ${c}`);
  }
  for (const d of outDirs)
    for (const f of filesUnder(d)) {
      for (const c of canaries) if (f.text.includes(c)) found.push(`${f.path}: ${c}`);
      if (f.text === '<a socket>') found.push(`${f.path}: a socket in the output`);
    }
  return found;
}

let seq = 0;
const outDir = (label: string) => join(outs, `${label.replace(/[^A-Za-z0-9]+/g, '-')}-${++seq}`);

/** One `ktl build` run from `cwd`; checks every leak and host-directory change itself. */
function build(
  args: string[],
  cwd: string,
  outputs: readonly string[] = [],
  extraEnv: Record<string, string> = {},
): KtlResult {
  const before = snapshots();
  const etcBefore = etcCanaryMade ? statSync(etcCanary).mtimeMs : 0;
  const r = ktl(['build', ...runtime, ...args], { cwd, env: { ...env, ...extraEnv } });
  const shown = `cd ${cwd} && ktl build ${args.join(' ')}`;
  expect({ cmd: shown, leaks: leaks(r, outputs) }).toEqual({ cmd: shown, leaks: [] });
  expect({ cmd: shown, changed: snapshots() }).toEqual({ cmd: shown, changed: before });
  if (etcCanaryMade) {
    expect(readFileSync(etcCanary, 'utf8')).toBe(`${canary.etc}\n`);
    expect(statSync(etcCanary).mtimeMs).toBe(etcBefore);
  }
  return r;
}

/** A path as typed from `cwd`: relative to it, or absolute from `/`. */
const typed = (cwd: string, abs: string) => (cwd === '/' ? abs : relative(cwd, abs) || '.');

/** The three places a user builds from (for refusals, which exit before the jail starts). */
const refusedCwds: [string, string][] = [
  ['in the repo', R],
  ['from the parent, relative paths', base],
  ['from /, absolute paths', '/'],
];
/** The same for builds. */
const buildCwds: [string, string][] = [
  ['in the repo', R],
  ['from the parent, relative paths', base],
  ['from /, absolute paths', '/'],
];

// ---------------------------------------------------------------------------------------------
// A control: the checks below would see a canary that got out.

describe('the leak checks themselves', () => {
  rigTest(
    `H named directly (the user's choice, followed): the canaries reach the output and the checks see them${why}`,
    () => {
      const out = outDir('control');
      const r = ktl(
        [
          'build',
          ...runtime,
          '--build-context',
          `assets=${H}`,
          '--secret',
          `id=npm,src=${join(H, '.ssh', 'id_ed25519')}`,
          '-f',
          join(R, 'df', 'assets.Dockerfile'),
          join(R, 'app'),
          '-o',
          `type=local,dest=${out}`,
        ],
        { cwd: elsewhere, env },
      );
      expect(r.code).toBe(0);
      const found = leaks(r, [out]);
      rmSync(out, { recursive: true, force: true });
      for (const c of [canary.ssh, canary.kube, registryAuth])
        expect({ c, seen: found.some((f) => f.endsWith(`: ${c}`)) }).toEqual({ c, seen: true });
    },
  );
});

// ---------------------------------------------------------------------------------------------
// Refused: each command line, from each of the three directories.

interface Refusal {
  name: string;
  /** The command line; `p(abs)` types a path as from the cwd. Gets `-o type=local,dest=OUT`. */
  args: (p: (abs: string) => string) => string[];
  /** The whole first line of the refusal (after "ERROR: "). */
  error: string;
  /** Only with the root-only canary under /etc. */
  needsEtc?: boolean;
}

const leadsOut = (what: string, abs: string, lnk: string, target: string, to: string) =>
  `${what}: ${abs}: the symlink ${lnk} -> ${target} leads out of the git work tree ${R} (to ${to})`;

const refusals: Refusal[] = [
  {
    name: '--build-context assets=R/assets, assets -> H',
    args: (p) => [
      '--build-context',
      `assets=${p(join(R, 'assets'))}`,
      '-f',
      p(join(R, 'df', 'assets.Dockerfile')),
      p(join(R, 'app')),
    ],
    error: leadsOut('named context assets', join(R, 'assets'), join(R, 'assets'), H, H),
  },
  {
    name: 'the context R/ctx-home -> H with -f R/Dockerfile',
    args: (p) => ['-f', p(join(R, 'Dockerfile')), p(join(R, 'ctx-home'))],
    error: leadsOut('build context', join(R, 'ctx-home'), join(R, 'ctx-home'), H, H),
  },
  {
    name: '--build-context assets=repos/x/assets repos/x/app (default Dockerfile)',
    args: (p) => ['--build-context', `assets=${p(join(R, 'assets'))}`, p(join(R, 'app'))],
    error: leadsOut('named context assets', join(R, 'assets'), join(R, 'assets'), H, H),
  },
  {
    name: '--secret id=npm,src=R/.npmrc, .npmrc -> H/.ssh/id_ed25519',
    args: (p) => [
      '--secret',
      `id=npm,src=${p(join(R, '.npmrc'))}`,
      '-f',
      p(join(R, 'Dockerfile')),
      p(join(R, 'app')),
    ],
    error: leadsOut(
      'secret npm',
      join(R, '.npmrc'),
      join(R, '.npmrc'),
      join(H, '.ssh', 'id_ed25519'),
      join(H, '.ssh', 'id_ed25519'),
    ),
  },
  {
    name: '-f R/docker/Dockerfile, a link to H/.kube/config',
    args: (p) => ['-f', p(join(R, 'docker', 'Dockerfile')), p(join(R, 'app'))],
    error: leadsOut(
      'Dockerfile',
      join(R, 'docker', 'Dockerfile'),
      join(R, 'docker', 'Dockerfile'),
      join(H, '.kube', 'config'),
      join(H, '.kube', 'config'),
    ),
  },
  {
    name: 'the context R/kube-ctx whose own Dockerfile links to H/.kube/config',
    args: (p) => [p(join(R, 'kube-ctx'))],
    error: leadsOut(
      'Dockerfile',
      join(R, 'kube-ctx', 'Dockerfile'),
      join(R, 'kube-ctx', 'Dockerfile'),
      join(H, '.kube', 'config'),
      join(H, '.kube', 'config'),
    ),
  },
  {
    name: '--ssh x=R/agent.sock, agent.sock -> the engine socket',
    args: (p) => [
      '--ssh',
      `x=${p(join(R, 'agent.sock'))}`,
      '-f',
      p(join(R, 'Dockerfile')),
      p(join(R, 'app')),
    ],
    error: leadsOut('ssh agent x', join(R, 'agent.sock'), join(R, 'agent.sock'), rigSock, rigSock),
  },
  {
    name: 'a relative link: assets-rel -> ../../home',
    args: (p) => [
      '--build-context',
      `assets=${p(join(R, 'assets-rel'))}`,
      '-f',
      p(join(R, 'df', 'assets.Dockerfile')),
      p(join(R, 'app')),
    ],
    error: leadsOut(
      'named context assets',
      join(R, 'assets-rel'),
      join(R, 'assets-rel'),
      '../../home',
      H,
    ),
  },
  {
    name: '".." in the link: assets-dots -> sub/../../../home',
    args: (p) => [
      '--build-context',
      `assets=${p(join(R, 'assets-dots'))}`,
      '-f',
      p(join(R, 'df', 'assets.Dockerfile')),
      p(join(R, 'app')),
    ],
    error: leadsOut(
      'named context assets',
      join(R, 'assets-dots'),
      join(R, 'assets-dots'),
      'sub/../../../home',
      H,
    ),
  },
  {
    name: 'through /proc: assets-proc -> /proc/self/root/.../home',
    args: (p) => [
      '--build-context',
      `assets=${p(join(R, 'assets-proc'))}`,
      '-f',
      p(join(R, 'df', 'assets.Dockerfile')),
      p(join(R, 'app')),
    ],
    error: leadsOut(
      'named context assets',
      join(R, 'assets-proc'),
      join(R, 'assets-proc'),
      `/proc/self/root${H}`,
      H,
    ),
  },
  {
    name: 'a link in an ancestor inside the repo: sub-home -> H, --build-context a=R/sub-home/.ssh',
    args: (p) => [
      '--build-context',
      `a=${p(join(R, 'sub-home', '.ssh'))}`,
      '-f',
      p(join(R, 'df', 'a.Dockerfile')),
      p(join(R, 'app')),
    ],
    error: leadsOut('named context a', join(R, 'sub-home', '.ssh'), join(R, 'sub-home'), H, H),
  },
  {
    name: 'two hops: hop-a -> hop-b, hop-b -> H',
    args: (p) => [
      '--build-context',
      `a=${p(join(R, 'hop-a'))}`,
      '-f',
      p(join(R, 'df', 'a.Dockerfile')),
      p(join(R, 'app')),
    ],
    error: leadsOut('named context a', join(R, 'hop-a'), join(R, 'hop-b'), H, H),
  },
  {
    name: 'two hops through a link outside the repo: hop-out -> ../../outside-link -> H',
    args: (p) => [
      '--build-context',
      `a=${p(join(R, 'hop-out'))}`,
      '-f',
      p(join(R, 'df', 'a.Dockerfile')),
      p(join(R, 'app')),
    ],
    error: leadsOut(
      'named context a',
      join(R, 'hop-out'),
      join(R, 'hop-out'),
      '../../outside-link',
      H,
    ),
  },
  {
    name: '--secret id=s,src=R/etc-secret, a link to the root-only /etc canary',
    needsEtc: true,
    args: (p) => [
      '--secret',
      `id=s,src=${p(join(R, 'etc-secret'))}`,
      '-f',
      p(join(R, 'Dockerfile')),
      p(join(R, 'app')),
    ],
    error: leadsOut('secret s', join(R, 'etc-secret'), join(R, 'etc-secret'), etcCanary, etcCanary),
  },
  {
    name: 'an output through a link: -o type=local,dest=R/out-link (-> H)',
    args: (p) => ['-o', `type=local,dest=${p(join(R, 'out-link'))}`, p(join(R, 'app'))],
    error: leadsOut('output local', join(R, 'out-link'), join(R, 'out-link'), H, H),
  },
  {
    name: 'a tar output through a link: -o type=tar,dest=R/out-link/img.tar',
    args: (p) => ['-o', `type=tar,dest=${p(join(R, 'out-link', 'img.tar'))}`, p(join(R, 'app'))],
    error: leadsOut('output tar', join(R, 'out-link'), join(R, 'out-link'), H, H),
  },
  {
    name: '--iidfile R/meta-link/iid, meta-link -> a host dir',
    // An image output beside the local one: --iidfile with local outputs alone is refused.
    args: (p) => [
      '--iidfile',
      p(join(R, 'meta-link', 'iid')),
      '-o',
      'type=image,name=ktl-attack-iid:latest',
      p(join(R, 'app')),
    ],
    error: leadsOut('iidfile', join(R, 'meta-link'), join(R, 'meta-link'), hostDir, hostDir),
  },
  {
    name: '--metadata-file R/meta-link/m.json, meta-link -> a host dir',
    args: (p) => ['--metadata-file', p(join(R, 'meta-link', 'm.json')), p(join(R, 'app'))],
    error: leadsOut('metadata-file', join(R, 'meta-link'), join(R, 'meta-link'), hostDir, hostDir),
  },
  {
    name: '--cache-to type=local,dest=R/out-link',
    args: (p) => ['--cache-to', `type=local,dest=${p(join(R, 'out-link'))}`, p(join(R, 'app'))],
    error: leadsOut('cache export (local)', join(R, 'out-link'), join(R, 'out-link'), H, H),
  },
  {
    name: '--cache-from type=local,src=R/assets',
    args: (p) => ['--cache-from', `type=local,src=${p(join(R, 'assets'))}`, p(join(R, 'app'))],
    error: leadsOut('cache import (local)', join(R, 'assets'), join(R, 'assets'), H, H),
  },
  {
    name: '--sandbox-bind R/assets:/extra:ro (the host side through a link)',
    args: (p) => [
      '--sandbox-bind',
      `${p(join(R, 'assets'))}:/extra:ro`,
      '-f',
      p(join(R, 'Dockerfile')),
      p(join(R, 'app')),
    ],
    error: leadsOut('--sandbox-bind', join(R, 'assets'), join(R, 'assets'), H, H),
  },
  {
    name: '--sandbox-bind R/assets:/extra:ro --build-context e=/extra (named through the guest path)',
    args: (p) => [
      '--sandbox-bind',
      `${p(join(R, 'assets'))}:/extra:ro`,
      '--build-context',
      'e=/extra',
      '-f',
      p(join(R, 'df', 'e.Dockerfile')),
      p(join(R, 'app')),
    ],
    error: leadsOut('named context e', join(R, 'assets'), join(R, 'assets'), H, H),
  },
];

describe('refused before the jail starts: exit 2, the link named, nothing leaked', () => {
  for (const c of refusals) {
    const skip = c.needsEtc && !etcWritable && !down;
    const t = down || skip ? test.skip : test;
    const reason = down ? why : skip ? ' [skipped: cannot create a root-only file in /etc]' : '';
    t(`${c.name}${reason}`, () => {
      for (const [where, cwd] of refusedCwds) {
        const out = outDir(`${c.name}-${where}`);
        const p = (abs: string) => typed(cwd, abs);
        const args = [...c.args(p), '-o', `type=local,dest=${p(out)}`];
        const r = build(args, cwd, [out]);
        const line = r.stderr.split('\n').find((l) => l.startsWith('ERROR: ')) ?? r.stderr;
        expect({ where, code: r.code, line }).toEqual({
          where,
          code: 2,
          line: `ERROR: ${c.error}`,
        });
        expect(r.stderr).toContain('--sandbox-bind');
        expect(r.stderr).not.toContain(BANNER);
        expect({ where, made: existsSync(out) }).toEqual({ where, made: false });
      }
    });
  }
});

describe('an engine socket is never an ssh agent, whatever its name', () => {
  rigTest(`--ssh x=<the engine socket> typed, and a link to it outside any repo${why}`, () => {
    const cases: [string, string[], Record<string, string>][] = [
      ['typed', ['--ssh', `x=${rigSock}`], {}],
      ['through a link of the user', ['--ssh', `x=${join(base, 'agent-layout.sock')}`], {}],
      ['as SSH_AUTH_SOCK', ['--ssh', 'default'], { SSH_AUTH_SOCK: rigSock }],
    ];
    for (const [how, ssh, extra] of cases) {
      const out = outDir(`ssh-${how}`);
      const r = build(
        [...ssh, '-f', join(R, 'Dockerfile'), join(R, 'app'), '-o', `type=local,dest=${out}`],
        elsewhere,
        [out],
        extra,
      );
      expect({ how, code: r.code }).toEqual({ how, code: 2 });
      expect(r.stderr).toMatch(
        new RegExp(
          `ERROR: ssh agent (x|default): .* is the engine socket ${rigSock.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, not an ssh agent`,
        ),
      );
      expect(existsSync(out)).toBe(false);
    }
  });
});

describe('inside an output directory: --iidfile and --metadata-file', () => {
  rigTest(`OUT/meta/... with a fresh OUT: refused up front, nothing written${why}`, () => {
    for (const [where, cwd] of refusedCwds) {
      const out = outDir(`meta-fresh-${where}`);
      const p = (abs: string) => typed(cwd, abs);
      const r = build(
        [
          '-f',
          p(join(R, 'df', 'meta.Dockerfile')),
          p(join(R, 'app')),
          '-o',
          `type=local,dest=${p(out)}`,
          '--metadata-file',
          p(join(out, 'meta', 'metadata.json')),
          '--iidfile',
          p(join(out, 'meta', 'iid')),
          // An image too: beside local outputs only, --iidfile is refused as buildx does.
          '-t',
          'ktl-attack/iid:1',
          '--load',
        ],
        cwd,
        [out],
      );
      expect({ where, code: r.code }).toEqual({ where, code: 2 });
      expect(r.stderr).toContain(
        `ERROR: iidfile: ${join(out, 'meta', 'iid')} is inside ${out}, which the build writes`,
      );
      expect(existsSync(out)).toBe(false);
      expect(readdirSync(hostDir)).toEqual([]);
    }
  });

  rigTest(
    `OUT/meta/... when an earlier build of the repo left OUT/meta -> a host dir: refused, nothing written there${why}`,
    () => {
      // The repo's first build exports OUT/meta -> a host directory (its own choice). The same
      // command line with --metadata-file OUT/meta/... again: the path is inside the output
      // directory as typed (refused up front, since the build writes there), whatever the link
      // left there leads to.
      const out = outDir('meta-again');
      const first = build(
        ['-f', join(R, 'df', 'meta.Dockerfile'), join(R, 'app'), '-o', `type=local,dest=${out}`],
        elsewhere,
        [out],
      );
      expect(first.code).toBe(0);
      expect(readlinkSync(join(out, 'meta'))).toBe(hostDir);
      const again = [
        '-f',
        join(R, 'df', 'meta.Dockerfile'),
        join(R, 'app'),
        '-o',
        `type=local,dest=${out}`,
        '--metadata-file',
        join(out, 'meta', 'metadata.json'),
        '--iidfile',
        join(out, 'meta', 'iid'),
        '-t',
        'ktl-attack/iid:1',
        '--load',
      ];
      const before = readdirSync(hostDir);
      const r = ktl(['build', ...runtime, ...again], { cwd: elsewhere, env });
      const written = readdirSync(hostDir);
      // Clean up before asserting, so that a failure here does not fail every later test.
      for (const n of written) if (!before.includes(n)) unlinkSync(join(hostDir, n));
      expect({ code: r.code, writtenInHostDir: written }).toEqual({
        code: 2,
        writtenInHostDir: [],
      });
      expect(leaks(r, [out])).toEqual([]);
    },
  );

  rigTest(
    `-o type=local,dest=OUT/meta when an earlier build of the repo left OUT/meta -> a host dir: nothing written there${why}`,
    () => {
      // As above, with the next build's output named inside the first's: its files would land
      // in the directory the repo's first build chose.
      const out = outDir('output-again');
      const first = build(
        ['-f', join(R, 'df', 'meta.Dockerfile'), join(R, 'app'), '-o', `type=local,dest=${out}`],
        elsewhere,
        [out],
      );
      expect(first.code).toBe(0);
      expect(readlinkSync(join(out, 'meta'))).toBe(hostDir);
      // The second build's output named inside the first's, where the repo's build left a link.
      const again = [
        '-f',
        join(R, 'df', 'meta.Dockerfile'),
        join(R, 'app'),
        '-o',
        `type=local,dest=${join(out, 'meta')}`,
      ];
      const before = readdirSync(hostDir);
      const r = ktl(['build', ...runtime, ...again], { cwd: elsewhere, env });
      const written = readdirSync(hostDir);
      for (const n of written)
        if (!before.includes(n)) rmSync(join(hostDir, n), { recursive: true, force: true });
      expect(leaks(r, [out])).toEqual([]);
      expect({ exit: r.code, writtenInHostDir: written }).toEqual({
        exit: 2,
        writtenInHostDir: [],
      });
      // Refused as a link inside a directory an earlier build exported to.
      expect(r.stderr).toContain(
        `the symlink ${join(out, 'meta')} -> ${hostDir} leads out of the directory an earlier build exported to, ${out},`,
      );
    },
  );

  rigTest(`beside the output: written normally${why}`, () => {
    for (const [where, cwd] of buildCwds) {
      const out = outDir(`meta-beside-${where}`);
      const meta = `${out}-meta`;
      const p = (abs: string) => typed(cwd, abs);
      const r = build(
        [
          '-f',
          p(join(R, 'df', 'meta.Dockerfile')),
          p(join(R, 'app')),
          '-o',
          `type=local,dest=${p(out)}`,
          '--metadata-file',
          p(join(meta, 'metadata.json')),
        ],
        cwd,
        [out, meta],
      );
      expect({ where, code: r.code }).toEqual({ where, code: 0 });
      expect(r.stderr).toContain(BANNER);
      const m = JSON.parse(readFileSync(join(meta, 'metadata.json'), 'utf8')) as object;
      expect(Object.keys(m).length).toBeGreaterThan(0);
      expect(readFileSync(join(out, 'built.txt'), 'utf8')).toBe('built\n');
      expect(readdirSync(hostDir)).toEqual([]);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Engine sockets under a bound directory.

describe('an engine socket under a bound directory is masked', () => {
  rigTest(
    `--build-context x=<the rig's directory, holding its engine socket>: not PRESENT inside${why}`,
    () => {
      const rigDir = dirname(rigSock);
      const out = outDir('rig-dir');
      // The Dockerfile does not read x (the rig's directory is not all readable): the jail
      // binds it all the same, and the self-check looks at the socket there.
      const r = build(
        [
          '--build-context',
          `x=${rigDir}`,
          '-f',
          join(R, 'Dockerfile'),
          join(R, 'app'),
          '-o',
          `type=local,dest=${out}`,
          '--sandbox-logs',
        ],
        elsewhere,
        [out],
      );
      expect(r.code).toBe(0);
      expect(r.stderr).toContain(`[sandbox] bind ${rigDir} -> ${rigDir} (ro, named context x)`);
      expect(r.stderr).toContain(`[sandbox] masked ${rigSock} (engine socket ${rigSock})`);
      expect(r.stderr).toContain(`[sandbox] inside: ${rigSock}: absent (masked)`);
      expect(r.stderr).not.toMatch(/\[sandbox\] inside: .*: PRESENT/);
      expect(readFileSync(join(out, 'ctx', 'a.txt'), 'utf8')).toBe('app file\n');
    },
  );

  rigTest(
    `--build-context x=DIR where DIR/docker.sock is the DOCKER_HOST (a proxy to the rig), copied whole: no socket in the output${why}`,
    async () => {
      const dir = join(base, 'engine-dir');
      const sock = join(dir, 'docker.sock');
      write(join(dir, 'readme.txt'), 'beside the engine socket\n');
      const proxy = spawn(
        process.execPath,
        [
          '-e',
          `const net = require('net');
           const [sock, rig] = process.argv.slice(1);
           net.createServer((c) => {
             const u = net.connect(rig);
             c.pipe(u).pipe(c);
             u.on('error', () => c.destroy());
             c.on('error', () => u.destroy());
           }).listen(sock);`,
          sock,
          rigSock,
        ],
        { stdio: 'ignore' },
      );
      helpers.push(proxy);
      try {
        for (let i = 0; i < 100 && !existsSync(sock); i++)
          await new Promise((res) => setTimeout(res, 20));
        expect(lstatSync(sock).isSocket()).toBe(true);
        const out = outDir('engine-dir');
        const r = build(
          [
            '--build-context',
            `x=${dir}`,
            '-f',
            join(R, 'df', 'x.Dockerfile'),
            join(R, 'app'),
            '-o',
            `type=local,dest=${out}`,
            '--sandbox-logs',
          ],
          elsewhere,
          [out],
          { DOCKER_HOST: `unix://${sock}` },
        );
        expect(r.code).toBe(0);
        expect(r.stderr).toContain(`[sandbox] masked ${sock} (engine socket ${sock})`);
        expect(r.stderr).toContain(`[sandbox] inside: ${sock}: absent (masked)`);
        expect(r.stderr).not.toMatch(/\[sandbox\] inside: .*: PRESENT/);
        expect(readFileSync(join(out, 'n-x', 'readme.txt'), 'utf8')).toBe(
          'beside the engine socket\n',
        );
        // The mask (an empty file) may come along; a socket may not.
        const copied = join(out, 'n-x', 'docker.sock');
        if (existsSync(copied)) {
          expect(lstatSync(copied).isSocket()).toBe(false);
          expect(lstatSync(copied).size).toBe(0);
        }
      } finally {
        proxy.kill('SIGKILL');
      }
    },
  );
});

// ---------------------------------------------------------------------------------------------
// Races: a directory on the path swapped between a real one and a link to H while builds run.

/**
 * In a loop, swaps DIR/NAME between a real directory (NAME.real while out) and a link to H
 * (NAME.link while out), by rename(2); counts its swaps into COUNT. Two renames per swap, so
 * for a moment NAME is not there at all.
 */
const FLIPPER = `const fs = require('fs');
const [dir, name, count] = process.argv.slice(1);
const a = dir + '/' + name, real = a + '.real', link = a + '.link';
const nap = new Int32Array(new SharedArrayBuffer(4));
let n = 0;
for (;;) {
  try {
    if (fs.lstatSync(a).isSymbolicLink()) { fs.renameSync(a, link); fs.renameSync(real, a); }
    else { fs.renameSync(a, real); fs.renameSync(link, a); }
    if (++n % 20 === 0) fs.writeFileSync(count, String(n));
  } catch {}
  Atomics.wait(nap, 0, 0, Math.random() * 6);
}`;

interface Race {
  name: string;
  /** The directory holding what is swapped, and its name there. */
  dir: string;
  entry: string;
  /** The named context given (`a=PATH`), and the file its real version holds. */
  context: string;
  named: string;
  harmless: string;
}

const races: Race[] = [
  {
    name: '--build-context assets=R/race/assets, assets swapped with a link to H',
    dir: join(R, 'race'),
    entry: 'assets',
    named: 'assets',
    context: join(R, 'race', 'assets'),
    harmless: 'harmless.txt',
  },
  {
    name: '--build-context a=R/race2/sub/.ssh, the ancestor sub swapped with a link to H',
    dir: join(R, 'race2'),
    entry: 'sub',
    named: 'a',
    context: join(R, 'race2', 'sub', '.ssh'),
    harmless: 'harmless.txt',
  },
];

describe('a repository that swaps a checked directory for a link while ktl builds', () => {
  for (const race of races)
    rigTest(
      `${race.name}: built from the real directory, refused (2) or stopped (71), never H${why}`,
      async () => {
        const flips = join(base, `flips-${race.entry}`);
        const flipper = spawn(process.execPath, ['-e', FLIPPER, race.dir, race.entry, flips], {
          stdio: 'ignore',
        });
        helpers.push(flipper);
        const outcomes: Record<string, number> = {};
        const started = Date.now();
        try {
          for (let i = 0; i < 10 && Date.now() - started < 45_000; i++) {
            const out = outDir(`race-${race.entry}-${i}`);
            const args = [
              '--build-context',
              `${race.named}=${race.context}`,
              '-f',
              join(R, 'df', `${race.named}.Dockerfile`),
              join(R, 'app'),
              '-o',
              `type=local,dest=${out}`,
            ];
            const r = build(args, elsewhere, [out]);
            const shown = `ktl build ${args.join(' ')}`;
            let kind: string;
            if (r.code === 0) {
              kind = '0 (built)';
              // Served from the real directory, never the home.
              const got = join(out, `n-${race.named}`);
              expect({ shown, files: readdirSync(got) }).toEqual({ shown, files: [race.harmless] });
            } else if (r.code === 2 && /^ERROR: .*the symlink .* leads out of/m.test(r.stderr)) {
              kind = '2 (the link refused)';
            } else if (r.code === 2 && /^ERROR: .* does not exist/m.test(r.stderr)) {
              kind = '2 (not there: between the two renames)';
            } else if (
              r.code === 71 &&
              r.stderr.includes("the sandbox's binds are not what was checked")
            ) {
              kind = '71 (binds not what was checked)';
            } else if (
              r.code === 71 &&
              r.stderr.includes('bwrap: ') &&
              r.stderr.includes(`Can't get type of source ${race.dir}/`)
            ) {
              // bubblewrap mounts the pinned descriptor and checks the mount against it: the
              // directory moved under it between its lookup and the mount.
              kind = '71 (bwrap: the pinned source moved)';
            } else {
              kind = `unexpected: exit ${r.code}`;
              expect({ shown, code: r.code, stderr: r.stderr }).toEqual({
                shown,
                code: 'built, 2 refused or 71 stopped',
                stderr: '',
              });
            }
            outcomes[kind] = (outcomes[kind] ?? 0) + 1;
          }
        } finally {
          flipper.kill('SIGKILL');
        }
        const n = existsSync(flips) ? readFileSync(flips, 'utf8') : '0';
        console.log(
          `race (${race.name}): ${JSON.stringify(outcomes)}; the flipper swapped >= ${n} times`,
        );
        expect(Number(n)).toBeGreaterThan(0);
      },
      120_000,
    );
});

// ---------------------------------------------------------------------------------------------
// Legitimate layouts still build.

describe('legitimate layouts still build', () => {
  rigTest(`absolute paths typed by the user (named context inside the repo)${why}`, () => {
    for (const [where, cwd] of buildCwds) {
      const out = outDir(`typed-${where}`);
      const p = (abs: string) => typed(cwd, abs);
      const r = build(
        [
          '--build-context',
          `assets=${p(join(R, 'real-assets'))}`,
          '-f',
          p(join(R, 'df', 'assets.Dockerfile')),
          p(join(R, 'app')),
          '-o',
          `type=local,dest=${p(out)}`,
        ],
        cwd,
        [out],
      );
      expect({ where, code: r.code }).toEqual({ where, code: 0 });
      expect(r.stderr).toContain(BANNER);
      expect(readFileSync(join(out, 'ctx', 'a.txt'), 'utf8')).toBe('app file\n');
      expect(readFileSync(join(out, 'n-assets', 'inside.txt'), 'utf8')).toBe('inside the repo\n');
    }
  });

  rigTest(`a checkout reached through a link of the user (L/checkout -> R)${why}`, () => {
    for (const [where, cwd] of [
      ['from L', L],
      ['from /', '/'],
    ] as const) {
      const out = outDir(`layout-${where}`);
      const p = (abs: string) => typed(cwd, abs);
      const co = join(L, 'checkout');
      const r = build(
        [
          '--build-context',
          `assets=${p(join(co, 'assets-inside'))}`,
          '-f',
          p(join(co, 'df', 'assets.Dockerfile')),
          p(join(co, 'app')),
          '-o',
          `type=local,dest=${p(out)}`,
        ],
        cwd,
        [out],
      );
      expect({ where, code: r.code }).toEqual({ where, code: 0 });
      expect(readFileSync(join(out, 'ctx', 'a.txt'), 'utf8')).toBe('app file\n');
      expect(readFileSync(join(out, 'n-assets', 'inside.txt'), 'utf8')).toBe('inside the repo\n');
      // And the plain form: the context through the link, its own Dockerfile.
      const out2 = outDir(`layout-plain-${where}`);
      const r2 = build([p(join(co, 'app')), '-o', `type=local,dest=${p(out2)}`], cwd, [out2]);
      expect({ where, code: r2.code }).toEqual({ where, code: 0 });
      expect(readFileSync(join(out2, 'ctx', 'a.txt'), 'utf8')).toBe('app file\n');
    }
  });

  rigTest(
    `a monorepo: -f R/docker/Dockerfile.real R/app (a real file above the context)${why}`,
    () => {
      for (const [where, cwd] of buildCwds) {
        const out = outDir(`monorepo-${where}`);
        const p = (abs: string) => typed(cwd, abs);
        const r = build(
          [
            '-f',
            p(join(R, 'docker', 'Dockerfile.real')),
            p(join(R, 'app')),
            '-o',
            `type=local,dest=${p(out)}`,
          ],
          cwd,
          [out],
        );
        expect({ where, code: r.code }).toEqual({ where, code: 0 });
        expect(readFileSync(join(out, 'ctx', 'a.txt'), 'utf8')).toBe('app file\n');
      }
    },
  );

  rigTest(`a named context outside the repo, a real directory (--build-context e=H2)${why}`, () => {
    for (const [where, cwd] of buildCwds) {
      const out = outDir(`outside-${where}`);
      const p = (abs: string) => typed(cwd, abs);
      const r = build(
        [
          '--build-context',
          `e=${p(H2)}`,
          '-f',
          p(join(R, 'df', 'e.Dockerfile')),
          p(join(R, 'app')),
          '-o',
          `type=local,dest=${p(out)}`,
        ],
        cwd,
        [out],
      );
      expect({ where, code: r.code }).toEqual({ where, code: 0 });
      expect(readFileSync(join(out, 'n-e', 'harmless.txt'), 'utf8')).toBe('harmless h2\n');
    }
  });

  rigTest(
    `links inside the repo that stay inside (assets-inside -> real-assets; assets-back -> ../x/real-assets)${why}`,
    () => {
      for (const [where, cwd] of buildCwds)
        for (const name of ['assets-inside', 'assets-back']) {
          const out = outDir(`${name}-${where}`);
          const p = (abs: string) => typed(cwd, abs);
          const r = build(
            [
              '--build-context',
              `assets=${p(join(R, name))}`,
              '-f',
              p(join(R, 'df', 'assets.Dockerfile')),
              p(join(R, 'app')),
              '-o',
              `type=local,dest=${p(out)}`,
            ],
            cwd,
            [out],
          );
          expect({ where, name, code: r.code }).toEqual({ where, name, code: 0 });
          expect(readFileSync(join(out, 'n-assets', 'inside.txt'), 'utf8')).toBe(
            'inside the repo\n',
          );
        }
    },
  );

  rigTest(`--sandbox-bind H2:/extra:ro, then --build-context e=/extra${why}`, () => {
    for (const [where, cwd] of buildCwds) {
      const out = outDir(`sandbox-bind-${where}`);
      const p = (abs: string) => typed(cwd, abs);
      const r = build(
        [
          '--sandbox-bind',
          `${p(H2)}:/extra:ro`,
          '--build-context',
          'e=/extra',
          '-f',
          p(join(R, 'df', 'e.Dockerfile')),
          p(join(R, 'app')),
          '-o',
          `type=local,dest=${p(out)}`,
        ],
        cwd,
        [out],
      );
      expect({ where, code: r.code }).toEqual({ where, code: 0 });
      expect(readFileSync(join(out, 'n-e', 'harmless.txt'), 'utf8')).toBe('harmless h2\n');
    }
  });
});
