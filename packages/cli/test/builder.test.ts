/**
 * `ktl builder start|status|stop` for real: a dockerd from PATH on a private socket under a
 * throw-away KTL_STATE_DIR, found by `ktl build` with no BUILDKIT_HOST / DOCKER_HOST, then
 * stopped with nothing left behind. Refusals use fake engines on a private PATH.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
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
const realWhy = realReason ? ` [skipped: ${realReason}]` : '';
const BRIDGE = 'ktlt0';

afterAll(() => {
  // Whatever a failed assertion left running is stopped here.
  ktl(['builder', 'stop'], { env: { KTL_STATE_DIR: state } });
  spawnSync('ip', ['link', 'del', BRIDGE], { stdio: 'ignore' });
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
      const s = ktl(
        ['builder', 'start', '--bridge-name', BRIDGE, '--bridge-cidr', '10.214.0.1/24'],
        { env: env() },
      );
      expect(s.stderr).toBe('');
      expect(s.code).toBe(0);
      const sock = join(state, 'builder', 'engine.sock');
      expect(s.stdout).toContain(`started: dockerd (pid `);
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

      const again = ktl(['builder', 'start'], { env: env() });
      expect(again.code).toBe(0);
      expect(again.stdout).toContain(`already running: dockerd (pid ${j.pid})`);

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

describe('ktl builder refusals', () => {
  test('bad flags are exit 2 and name the flag', () => {
    const a = ktl(['builder', 'start', '--bridge-name', 'this-name-is-too-long'], { env: env() });
    expect(a.code).toBe(2);
    expect(a.stderr).toContain('--bridge-name this-name-is-too-long: not a valid interface name');
    const b = ktl(['builder', 'start', '--bridge-cidr', '10.0.0.300/24'], { env: env() });
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
    const r = ktl(['builder', 'start'], { env: env({ PATH: onlyNode }) });
    rmSync(onlyNode, { recursive: true, force: true });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('neither buildkitd nor dockerd is on PATH');
    expect(r.stderr).toContain('hint: install one');
  });

  test('an engine that dies at start: exit 4, its log tail printed, nothing left behind', () => {
    const fake = join(fakeBin, 'buildkitd');
    writeFileSync(
      fake,
      '#!/bin/sh\necho "fake buildkitd: cannot open the state dir" >&2\nexit 1\n',
    );
    chmodSync(fake, 0o755);
    const r = ktl(['builder', 'start', '--engine', 'buildkitd'], {
      env: env({ PATH: `${fakeBin}:${process.env.PATH}` }),
    });
    if (!isRoot) {
      expect(r.code).toBe(5); // refused before anything starts
      expect(r.stderr).toContain('needs root');
      return expect(r.stderr).toContain('hint: run `sudo ktl builder start`');
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
});
