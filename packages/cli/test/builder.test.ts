/**
 * `ktl builder start|status|stop` for real, under throw-away KTL_STATE_DIRs: the rootless
 * engine (Docker's rootless mode, as ktl-builder when ktl is root, as the caller otherwise)
 * and the rootful one (a dockerd from PATH on a private socket), each found by `ktl build`
 * with no BUILDKIT_HOST / DOCKER_HOST, then stopped with nothing left behind. Refusals use
 * fake engines on a private PATH, and, for rootless, the host's real checks.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { ktl, repoRoot } from './helpers';

const state = mkdtempSync(join(tmpdir(), 'ktl-st-'));
const fakeBin = mkdtempSync(join(tmpdir(), 'ktl-fakebin-'));
const isRoot = process.getuid?.() === 0;
const dockerd = spawnSync('sh', ['-c', 'command -v dockerd'], { encoding: 'utf8' }).stdout.trim();
const rigReady = existsSync('/var/lib/ktl-rig/env');
const hasIp = spawnSync('sh', ['-c', 'command -v ip'], { encoding: 'utf8' }).stdout.trim() !== '';
const realReason = !isRoot
  ? 'not root (dockerd runs rootful)'
  : !dockerd
    ? 'no dockerd on PATH'
    : !hasIp
      ? 'no ip (iproute2)'
      : !rigReady
        ? 'the rig (registry with the base image) is not up; run scripts/rig.sh up'
        : '';
const realTest = realReason ? test.skip : test;
const onHostPath = (name: string) =>
  spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).stdout.trim();
// What the rootless engine needs on the host (scripts/setup.sh deps installs it).
const rootlessTools = ['dockerd', 'rootlesskit', 'slirp4netns', 'newuidmap', 'newgidmap'];
const rootlessMissing = rootlessTools.filter((t) => !onHostPath(t));
const rootlessReason = !isRoot
  ? 'not root (the case runs ktl as root, which runs the engine as ktl-builder)'
  : rootlessMissing.length > 0
    ? `not on PATH: ${rootlessMissing.join(', ')} (scripts/setup.sh deps installs them)`
    : '';
const rootlessTest = rootlessReason ? test.skip : test;
const rootlessWhy = rootlessReason ? ` [skipped: ${rootlessReason}]` : '';
const realWhy = realReason ? ` [skipped: ${realReason}]` : '';
// A bridge no other engine of the rig uses (ktlc0: compat, ktlt0: the TLS engine), made and
// removed by the managed dockerd itself; the cleanup removes it only if this file made it.
const BRIDGE = 'ktlmb0';
let bridgeMade = false;

afterAll(() => {
  // Whatever a failed assertion left running is stopped here.
  ktl(['builder', 'stop'], { env: { KTL_STATE_DIR: state } });
  if (bridgeMade) spawnSync('ip', ['link', 'del', BRIDGE], { stdio: 'ignore' });
  rmSync(state, { recursive: true, force: true });
  rmSync(fakeBin, { recursive: true, force: true });
});

const env = (extra: Record<string, string> = {}) => ({
  KTL_STATE_DIR: state,
  BUILDKIT_HOST: '',
  DOCKER_HOST: '',
  ...extra,
});
const bridgeExists = (name: string) =>
  spawnSync('ip', ['link', 'show', name], { stdio: 'ignore' }).status === 0;

describe('ktl builder on this machine', () => {
  realTest(
    `start, found by ktl build (host and sandbox), status, start again, stop${realWhy}`,
    () => {
      const docker0Before = bridgeExists('docker0');
      // Someone else's bridge of that name would be shared, and not removed by stop.
      expect(bridgeExists(BRIDGE)).toBe(false);
      bridgeMade = true;
      const s = ktl(
        [
          'builder',
          'start',
          '--rootful',
          '--bridge-name',
          BRIDGE,
          '--bridge-cidr',
          '10.214.0.1/24',
        ],
        { env: env() },
      );
      expect(s.stderr).toBe('');
      expect(s.code).toBe(0);
      const sock = join(state, 'builder', 'engine.sock');
      expect(s.stdout).toContain(`started: dockerd (rootful, pid `);
      expect(s.stdout).toContain(`at docker://unix://${sock}`);
      expect(bridgeExists(BRIDGE)).toBe(true);

      const st = ktl(['builder', 'status', '--json'], { env: env() });
      expect(st.code).toBe(0);
      const j = JSON.parse(st.stdout);
      expect(j).toMatchObject({ running: true, engine: 'dockerd', socket: sock });
      expect(readFileSync(`/proc/${j.pid}/comm`, 'utf8').trim()).toBe('dockerd');

      const hello = join(repoRoot, 'testdata', 'build', 'hello');
      const out = join(state, 'out-host');
      const h = ktl(['build', hello, '--progress', 'plain', '-o', out], {
        env: env({ KTL_SANDBOX_DISABLE: '1' }),
      });
      expect(h.stderr).toContain(`#0 building with docker://unix://${sock}`);
      expect(h.code).toBe(0);
      expect(readFileSync(join(out, 'built.txt'), 'utf8')).toContain(
        'hello from the ktl sandbox demo',
      );

      const out2 = join(state, 'out-jail');
      const j2 = ktl(['build', hello, '-o', out2], {
        env: env({ KTL_SANDBOX_DISABLE: '', KTL_SANDBOX_CONFIG: '' }),
      });
      expect(j2.stderr).toMatch(/^Running ktl build inside the sandbox/);
      expect(j2.code).toBe(0);
      expect(existsSync(join(out2, 'built.txt'))).toBe(true);

      const again = ktl(['builder', 'start', '--rootful'], { env: env() });
      expect(again.code).toBe(0);
      expect(again.stdout).toContain(`already running: dockerd (rootful, pid ${j.pid})`);
      // A rootless start is not answered with the rootful engine.
      const other = ktl(['builder', 'start'], { env: env() });
      expect(other.code).toBe(2);
      expect(other.stderr).toContain(
        `a rootful ktl-managed builder is already running (dockerd, pid ${j.pid}), not the rootless one asked for`,
      );

      const stop = ktl(['builder', 'stop'], { env: env() });
      expect(stop.code).toBe(0);
      expect(stop.stdout).toContain(`stopped: dockerd (pid ${j.pid})`);
      expect(existsSync(`/proc/${j.pid}`)).toBe(false);
      expect(existsSync(sock)).toBe(false);
      expect(bridgeExists(BRIDGE)).toBe(false);
      // Another engine's bridge is never touched.
      expect(bridgeExists('docker0')).toBe(docker0Before);
      const after = ktl(['builder', 'status'], { env: env() });
      expect(after.code).toBe(1);
      expect(after.stdout).toContain('not running');
      const stop2 = ktl(['builder', 'stop'], { env: env() });
      expect(stop2.code).toBe(0);
      expect(stop2.stderr).toContain('no ktl-managed builder is running');
    },
    180_000,
  );
});

/** Every process whose command line mentions `needle`, as `pid comm`. */
const processesNaming = (needle: string) =>
  spawnSync('ps', ['-e', '-o', 'pid=,comm=,args='], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter((l) => l.includes(needle) && !l.includes('jest'))
    .map((l) => l.trim().split(/\s+/).slice(0, 2).join(' '));

describe('the rootless ktl builder on this machine', () => {
  const rlState = mkdtempSync(join(tmpdir(), 'ktl-rlst-'));
  const rlEnv = (extra: Record<string, string> = {}) => ({
    KTL_STATE_DIR: rlState,
    BUILDKIT_HOST: '',
    DOCKER_HOST: '',
    ...extra,
  });
  let engineDir = '';
  afterAll(() => {
    ktl(['builder', 'stop'], { env: rlEnv() });
    rmSync(rlState, { recursive: true, force: true });
    // The engine's data (owned by ktl-builder's subordinate ids) goes with the test.
    if (engineDir) rmSync(engineDir, { recursive: true, force: true });
  });

  rootlessTest(
    `start as root: the engine runs as ktl-builder; found by ktl build (sandboxed); status; start again; stop ends every process${rootlessWhy}`,
    () => {
      const s = ktl(['builder', 'start'], { env: rlEnv() });
      expect(s.code).toBe(0);
      const link = join(rlState, 'builder', 'engine.sock');
      expect(s.stdout).toContain('started: dockerd (rootless, as ktl-builder, pid ');
      expect(s.stdout).toContain(`at docker://unix://${link}`);
      const st = JSON.parse(ktl(['builder', 'status', '--json'], { env: rlEnv() }).stdout);
      engineDir = st.dir;
      expect(st).toMatchObject({
        running: true,
        engine: 'dockerd',
        rootless: true,
        comm: 'rootlesskit',
        user: { name: 'ktl-builder' },
        socket: link,
        engineSocket: join(st.dir, 'engine.sock'),
        runtimeDir: join(st.dir, 'r'),
      });
      // Root's state dir holds the record and the log; the engine's files are ktl-builder's.
      expect(st.dir).toMatch(/^\/var\/lib\/ktl-builder\/engine-[0-9a-f]{8}$/);
      expect(readlinkSync(link)).toBe(st.engineSocket);
      expect(statSync(st.dir).uid).toBe(st.user.uid);
      // Nothing of it for other users (dockerd makes its data root 0710 itself).
      expect(statSync(st.dir).mode & 0o077).toBe(0);
      expect(statSync(join(st.dir, 'data')).mode & 0o007).toBe(0);
      expect(statSync(join(rlState, 'builder', 'engine.log')).uid).toBe(0);
      const running = processesNaming(st.dir);
      for (const comm of ['rootlesskit', 'exe', 'dockerd', 'containerd'])
        expect(running.some((p) => p.endsWith(` ${comm}`))).toBe(true);

      const load = spawnSync(
        'bash',
        [join(repoRoot, 'scripts', 'rig-rootless.sh'), 'load', st.address],
        {
          encoding: 'utf8',
        },
      );
      expect(load.stderr).toContain(`loading 127.0.0.1:5000/ktl/busybox:latest into ${st.address}`);
      expect(load.status).toBe(0);
      const out = join(rlState, 'out');
      const b = ktl(['build', join(repoRoot, 'testdata', 'build', 'hello'), '-o', out], {
        env: rlEnv({ KTL_SANDBOX_DISABLE: '', KTL_SANDBOX_CONFIG: '' }),
      });
      expect(b.stderr).toMatch(/^Running ktl build inside the sandbox/);
      expect(b.code).toBe(0);
      expect(readFileSync(join(out, 'built.txt'), 'utf8')).toContain('built by 0 on');

      const again = ktl(['builder', 'start'], { env: rlEnv() });
      expect(again.code).toBe(0);
      expect(again.stdout).toContain(
        `already running: dockerd (rootless, as ktl-builder, pid ${st.pid})`,
      );
      const rootful = ktl(['builder', 'start', '--rootful'], { env: rlEnv() });
      expect(rootful.code).toBe(2);
      expect(rootful.stderr).toContain('a rootless ktl-managed builder is already running');

      const slirp = spawnSync('pgrep', ['-P', String(st.pid), 'slirp4netns'], { encoding: 'utf8' });
      expect(slirp.stdout.trim()).toMatch(/^\d+$/);
      const stop = ktl(['builder', 'stop'], { env: rlEnv() });
      expect(stop.stdout).toContain(`stopped: dockerd (rootless) (pid ${st.pid})`);
      expect(stop.code).toBe(0);
      // Nothing of it keeps running: rootlesskit, its child, dockerd, containerd, slirp4netns.
      expect(existsSync(`/proc/${st.pid}`)).toBe(false);
      expect(existsSync(`/proc/${slirp.stdout.trim()}`)).toBe(false);
      expect(processesNaming(st.dir)).toEqual([]);
      expect(existsSync(link)).toBe(false);
      expect(existsSync(st.runtimeDir)).toBe(false);
      // Its images and cache are kept for the next start.
      expect(existsSync(join(st.dir, 'data'))).toBe(true);
      expect(ktl(['builder', 'status'], { env: rlEnv() }).code).toBe(1);
    },
    180_000,
  );

  (rootlessReason === '' && isRoot ? test : test.skip)(
    `start as an unprivileged user (ktl-builder itself): the engine runs as the caller, under the caller's state dir${rootlessWhy}`,
    () => {
      const home = mkdtempSync(join(tmpdir(), 'ktl-rlcaller-'));
      const uid = Number(spawnSync('id', ['-u', 'ktl-builder'], { encoding: 'utf8' }).stdout);
      const gid = Number(spawnSync('id', ['-g', 'ktl-builder'], { encoding: 'utf8' }).stdout);
      spawnSync('chown', [`${uid}:${gid}`, home]);
      const as = (args: string[]) =>
        spawnSync(join(repoRoot, 'bin', 'ktl'), args, {
          encoding: 'utf8',
          uid,
          gid,
          cwd: home,
          env: {
            ...process.env,
            HOME: home,
            KTL_STATE_DIR: join(home, 'st'),
            BUILDKIT_HOST: '',
            DOCKER_HOST: '',
          },
          timeout: 90_000,
        });
      try {
        const s = as(['builder', 'start']);
        expect(s.stderr).toBe('');
        expect(s.status).toBe(0);
        const st = JSON.parse(as(['builder', 'status', '--json']).stdout);
        expect(st).toMatchObject({
          rootless: true,
          user: { name: 'ktl-builder', uid },
          dir: join(home, 'st', 'builder'),
          socket: join(home, 'st', 'builder', 'engine.sock'),
          runtimeDir: expect.stringMatching(/./),
        });
        expect(st.engineSocket).toBeUndefined();
        const ls = JSON.parse(as(['builder', 'ls', '--json']).stdout);
        expect(ls.selected).toMatchObject({ rootless: true });
        const stop = as(['builder', 'stop']);
        expect(stop.status).toBe(0);
        expect(existsSync(`/proc/${st.pid}`)).toBe(false);
        expect(processesNaming(st.dir)).toEqual([]);
      } finally {
        as(['builder', 'stop']);
        rmSync(home, { recursive: true, force: true });
      }
    },
    120_000,
  );
});

describe('ktl builder refusals', () => {
  test('bad flags are exit 2 and name the flag', () => {
    const a = ktl(['builder', 'start', '--rootful', '--bridge-name', 'this-name-is-too-long'], {
      env: env(),
    });
    expect(a.code).toBe(2);
    expect(a.stderr).toContain('--bridge-name this-name-is-too-long: not a valid interface name');
    const b = ktl(['builder', 'start', '--rootful', '--bridge-cidr', '10.0.0.300/24'], {
      env: env(),
    });
    expect(b.code).toBe(2);
    expect(b.stderr).toContain('--bridge-cidr 10.0.0.300/24');
    const c = ktl(['builder', 'start', '--engine', 'podman'], { env: env() });
    expect(c.code).toBe(2);
    expect(c.stderr).toMatch(/Expected --engine=podman to be one of/);
  });

  test('no engine on PATH: exit 3, with what to install', () => {
    // A PATH holding node and nothing else.
    const onlyNode = mkdtempSync(join(tmpdir(), 'ktl-onlynode-'));
    symlinkSync(process.execPath, join(onlyNode, 'node'));
    const r = ktl(['builder', 'start', '--rootful'], { env: env({ PATH: onlyNode }) });
    const rl = ktl(['builder', 'start'], { env: env({ PATH: onlyNode }) });
    rmSync(onlyNode, { recursive: true, force: true });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('neither buildkitd nor dockerd is on PATH');
    expect(r.stderr).toContain('hint: install one');
    expect(rl.code).toBe(3);
    expect(rl.stderr).toContain('dockerd is not on PATH');
    expect(rl.stderr).toContain('rootlesskit slirp4netns uidmap');
  });

  test('an engine that dies at start: exit 4, its log tail printed, nothing left behind', () => {
    const fake = join(fakeBin, 'buildkitd');
    writeFileSync(
      fake,
      '#!/bin/sh\necho "fake buildkitd: cannot open the state dir" >&2\nexit 1\n',
    );
    chmodSync(fake, 0o755);
    const r = ktl(['builder', 'start', '--rootful', '--engine', 'buildkitd'], {
      env: env({ PATH: `${fakeBin}:${process.env.PATH}` }),
    });
    if (!isRoot) {
      expect(r.code).toBe(5); // refused before anything starts
      expect(r.stderr).toContain('needs root');
      return expect(r.stderr).toContain('hint: run `sudo ktl builder start --rootful`');
    }
    expect(r.code).toBe(4);
    expect(r.stderr).toContain('buildkitd did not start: it exited (status 1)');
    expect(r.stderr).toContain('fake buildkitd: cannot open the state dir');
    expect(existsSync(join(state, 'builder', 'builder.json'))).toBe(false);
  });

  const nobody = isRoot && spawnSync('setpriv', ['--version']).status === 0;
  (nobody ? test : test.skip)(
    `not root: exit 5 before anything starts${nobody ? '' : ' [skipped: needs root and setpriv to drop to nobody]'}`,
    () => {
      const home = mkdtempSync(join(tmpdir(), 'ktl-nobody-'));
      chmodSync(home, 0o777);
      mkdirSync(join(home, 'bin'));
      const r = spawnSync(
        'setpriv',
        [
          '--reuid=65534',
          '--regid=65534',
          '--clear-groups',
          join(repoRoot, 'bin', 'ktl'),
          'builder',
          'start',
          '--rootful',
        ],
        {
          encoding: 'utf8',
          env: { ...process.env, KTL_STATE_DIR: join(home, 'state'), HOME: home },
        },
      );
      rmSync(home, { recursive: true, force: true });
      expect(r.status).toBe(5);
      expect(r.stderr).toContain('dockerd needs root');
    },
  );

  (dockerd ? test : test.skip)(
    `rootless: a missing tool is named with its package, exit 4, nothing started${dockerd ? '' : ' [skipped: no dockerd on PATH]'}`,
    () => {
      // PATH: dockerd and node, but none of the rootless parts.
      const bin = mkdtempSync(join(tmpdir(), 'ktl-rlbin-'));
      symlinkSync(process.execPath, join(bin, 'node'));
      symlinkSync(dockerd, join(bin, 'dockerd'));
      const r = ktl(['builder', 'start'], { env: env({ PATH: bin }) });
      rmSync(bin, { recursive: true, force: true });
      expect(r.code).toBe(4);
      expect(r.stderr).toContain('ERROR: the rootless engine cannot run on this host:');
      expect(r.stderr).toContain('  - rootlesskit is not on PATH');
      expect(r.stderr).toContain('  - slirp4netns is not on PATH');
      expect(r.stderr).toContain('  - newuidmap is not on PATH');
      expect(r.stderr).toContain('hint: apt-get install rootlesskit');
      expect(r.stderr).toContain('hint: apt-get install uidmap');
      // Never a rootful engine in its place: the way to one is named, not taken.
      expect(r.stderr).toContain('`ktl builder start --rootful`');
      expect(existsSync(join(state, 'builder', 'builder.json'))).toBe(false);
    },
  );

  rootlessTest(
    `rootless: a /dev/net/tun the engine's user cannot open is named with its fix, exit 4${rootlessWhy}`,
    () => {
      // The host's own /dev/net/tun stays as it is: in a private mount namespace a 0600 tun
      // device node is mounted over it, and ktl-builder is refused by the kernel there.
      const dev = mkdtempSync(join(tmpdir(), 'ktl-tun-'));
      const r = spawnSync(
        'unshare',
        [
          '--mount',
          '--propagation',
          'private',
          'sh',
          '-c',
          'mknod -m 600 "$1/tun" c 10 200 && mount --bind "$1/tun" /dev/net/tun && shift && exec "$@"',
          'sh',
          dev,
          join(repoRoot, 'bin', 'ktl'),
          'builder',
          'start',
        ],
        { encoding: 'utf8', env: { ...process.env, ...env() } },
      );
      rmSync(dev, { recursive: true, force: true });
      expect(r.stderr).toContain(
        '  - /dev/net/tun (mode 0600) cannot be opened by ktl-builder: slirp4netns cannot set up its tap device',
      );
      expect(r.stderr).toContain('hint: chmod 666 /dev/net/tun');
      expect(r.status).toBe(4);
      expect(existsSync(join(state, 'builder', 'builder.json'))).toBe(false);
    },
  );

  (rootlessReason === '' && nobody ? test : test.skip)(
    `rootless as a user with no subordinate ids (nobody): exit 4, naming /etc/subuid and the usermod to run${rootlessReason ? rootlessWhy : nobody ? '' : ' [skipped: no setpriv]'}`,
    () => {
      const home = mkdtempSync(join(tmpdir(), 'ktl-nobody-'));
      chmodSync(home, 0o777);
      const r = spawnSync(
        'setpriv',
        [
          '--reuid=65534',
          '--regid=65534',
          '--clear-groups',
          join(repoRoot, 'bin', 'ktl'),
          'builder',
          'start',
        ],
        {
          encoding: 'utf8',
          env: { ...process.env, KTL_STATE_DIR: join(home, 'state'), HOME: home },
        },
      );
      rmSync(home, { recursive: true, force: true });
      expect(r.stderr).toContain('  - nobody has no subordinate id range in /etc/subuid');
      expect(r.stderr).toContain('  - nobody has no subordinate id range in /etc/subgid');
      expect(r.stderr).toMatch(/hint: sudo usermod --add-subuids \d+-\d+ nobody/);
      expect(r.status).toBe(4);
    },
  );

  test('rootless: --engine buildkitd and the bridge flags need --rootful (exit 2)', () => {
    const a = ktl(['builder', 'start', '--engine', 'buildkitd'], { env: env() });
    expect(a.code).toBe(2);
    expect(a.stderr).toContain('--engine buildkitd runs only with --rootful');
    const b = ktl(['builder', 'start', '--bridge-cidr', '10.9.0.1/24'], { env: env() });
    expect(b.code).toBe(2);
    expect(b.stderr).toContain('--bridge-cidr applies to --rootful only');
  });
});
