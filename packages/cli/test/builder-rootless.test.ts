/**
 * Builds on the rootless engine `ktl builder start` gives (the rig's, scripts/rig-rootless.sh:
 * Docker 26.1 rootless, run as ktl-builder, the base image loaded into it), found as the
 * managed builder with no BUILDKIT_HOST / DOCKER_HOST: sandboxed, cached, every output kind
 * the issue names, cache mounts and secrets; and what rootless is for, against the rig's
 * rootful engine as the contrast: a RUN step granted network.host reads a marker served on the
 * host's 127.0.0.1 there and cannot on the rootless engine. ls and doctor report each engine.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { rootlessEngine, testEngines } from '../../buildkit-client/test/engines';
import { ktl } from './helpers';

const rootless = await rootlessEngine();
const rig = (await testEngines()).find((e) => e.id === 'rig')!;
const rlTest = rootless.down ? test.skip : test;
const rlWhy = rootless.down;
const bothDown = rootless.down || rig.down;
const bothTest = bothDown ? test.skip : test;

const dir = mkdtempSync(join(tmpdir(), 'ktl-rootless-'));
const servers: ChildProcess[] = [];
afterAll(() => {
  for (const s of servers) s.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const nonce = randomBytes(6).toString('hex');
const socket = `${rootless.stateDir}/builder/engine.sock`;
/** ktl build finds the rootless engine as the managed builder: nothing else is named. */
const onRootless = (extra: Record<string, string> = {}) => ({
  KTL_STATE_DIR: rootless.stateDir,
  BUILDKIT_HOST: '',
  DOCKER_HOST: '',
  KTL_SANDBOX_DISABLE: '',
  KTL_SANDBOX_CONFIG: '',
  ...extra,
});

function context(name: string, dockerfile: string, files: Record<string, string> = {}): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'Dockerfile'), dockerfile);
  for (const [f, c] of Object.entries(files)) writeFileSync(join(d, f), c);
  return d;
}

describe(`on the rootless engine${rlWhy}`, () => {
  rlTest(
    'a sandboxed build with the banner, found as the managed builder; the same build again is cached; local and tar outputs',
    () => {
      const ctx = context(
        'outputs',
        `FROM ${rootless.baseImage}\nARG NONCE\nCOPY in.txt /in.txt\nRUN cat /in.txt > /out.txt && echo "uid $(id -u) $NONCE" >> /out.txt\n`,
        { 'in.txt': 'from the context\n' },
      );
      const local = join(dir, 'out-local');
      const first = ktl(
        [
          'build',
          ctx,
          '--build-arg',
          `NONCE=${nonce}`,
          '--progress',
          'plain',
          '-o',
          `type=local,dest=${local}`,
        ],
        { env: onRootless() },
      );
      expect(first.stderr).toMatch(
        /^Running ktl build inside the sandbox \(policy: embedded default/,
      );
      expect(first.stderr).toContain(`#0 building with docker://unix://${socket}`);
      expect(first.code).toBe(0);
      // Root inside the engine's user namespace: uid 0 there, ktl-builder's ids on the host.
      expect(readFileSync(join(local, 'out.txt'), 'utf8')).toBe(
        `from the context\nuid 0 ${nonce}\n`,
      );

      const tarFile = join(dir, 'out.tar');
      const again = ktl(
        [
          'build',
          ctx,
          '--build-arg',
          `NONCE=${nonce}`,
          '--progress',
          'plain',
          '-o',
          `type=tar,dest=${tarFile}`,
        ],
        { env: onRootless() },
      );
      expect(again.code).toBe(0);
      expect(again.stderr).toMatch(/#\d+ \[3\/3\] RUN cat \/in.txt[^\n]*\n#\d+ CACHED/);
      const listed = spawnSync('tar', ['-tf', tarFile], { encoding: 'utf8' }).stdout.split('\n');
      expect(listed).toEqual(expect.arrayContaining(['out.txt', 'in.txt', 'bin/busybox']));
      const out = spawnSync('tar', ['-xOf', tarFile, 'out.txt'], { encoding: 'utf8' }).stdout;
      expect(out).toBe(`from the context\nuid 0 ${nonce}\n`);
    },
    120_000,
  );

  rlTest(
    '--load: the image is stored in the rootless engine, not pulled or pushed anywhere',
    () => {
      const ctx = context('load', `FROM ${rootless.baseImage}\nRUN echo ${nonce} > /loaded.txt\n`);
      const name = `ktl-test/rootless-load:${nonce}`;
      const r = ktl(['build', ctx, '-t', name, '--load', '--progress', 'quiet'], {
        env: onRootless(),
      });
      expect(r.code).toBe(0);
      const docker = (...args: string[]) =>
        spawnSync(rootless.dockerCli, ['-H', rootless.dockerHost, ...args], { encoding: 'utf8' });
      const inspect = docker('image', 'inspect', '--format', '{{.Id}}', name);
      expect(inspect.status).toBe(0);
      expect(inspect.stdout.trim()).toBe(r.stdout.trim());
      docker('image', 'rm', name);
    },
  );

  // Every step names this run's nonce: a step cached by an earlier run would prove nothing
  // (a secret is no part of a step's cache key).
  rlTest('a cache mount keeps its files from one build to the next; a secret is mounted', () => {
    const secret = join(dir, 'token.txt');
    writeFileSync(secret, `secret-${nonce}\n`);
    const ctx = context(
      'mounts',
      `FROM ${rootless.baseImage}\nARG STEP\nRUN --mount=type=cache,target=/cache,id=ktl-rootless-${nonce} : ${nonce} && echo "$STEP" >> /cache/log && cp /cache/log /seen.txt\nRUN --mount=type=secret,id=tok : ${nonce} && cp /run/secrets/tok /secret-copy.txt\n`,
    );
    const build = (step: string, out: string) =>
      ktl(
        [
          'build',
          ctx,
          '--build-arg',
          `STEP=${step}`,
          '--secret',
          `id=tok,src=${secret}`,
          '-o',
          `type=local,dest=${out}`,
        ],
        { env: onRootless() },
      );
    const one = build('one', join(dir, 'mounts-1'));
    expect(one.code).toBe(0);
    const two = build('two', join(dir, 'mounts-2'));
    expect(two.code).toBe(0);
    expect(readFileSync(join(dir, 'mounts-1', 'seen.txt'), 'utf8')).toBe('one\n');
    expect(readFileSync(join(dir, 'mounts-2', 'seen.txt'), 'utf8')).toBe('one\ntwo\n');
    expect(readFileSync(join(dir, 'mounts-2', 'secret-copy.txt'), 'utf8')).toBe(
      `secret-${nonce}\n`,
    );
  });
});

/** A server on the host's 127.0.0.1 handing out `marker`, in a process of its own. */
async function loopbackMarker(marker: string): Promise<number> {
  const s = spawn(
    process.execPath,
    [
      '-e',
      'const s = require("net").createServer((c) => c.end(process.argv[1] + "\\n"));' +
        's.listen(0, "127.0.0.1", () => console.log(s.address().port));',
      marker,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  servers.push(s);
  return new Promise((resolve, reject) => {
    s.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    s.once('exit', (code) => reject(new Error(`the marker server exited (${code})`)));
  });
}

const WARNING = 'WARNING: this build asks for network.host and the builder';

describe(`what rootless keeps from the host${bothDown}`, () => {
  bothTest(
    "RUN --network=host reads a marker on the host's 127.0.0.1 through the rootful rig engine (with the warning, once), and cannot through the rootless one",
    async () => {
      const marker = `loopback-marker-${nonce}`;
      const port = await loopbackMarker(marker);
      const ctx = context(
        'hostnet',
        `FROM ${rootless.baseImage}\nARG PORT\nRUN (nc -w 3 127.0.0.1 "$PORT" </dev/null || echo unreachable) > /loot.txt 2>&1\n`,
      );
      const args = (out: string) => [
        'build',
        ctx,
        '--network',
        'host',
        '--no-cache',
        '--build-arg',
        `PORT=${port}`,
        '-o',
        `type=local,dest=${out}`,
      ];
      const rootful = ktl(args(join(dir, 'loot-rootful')), {
        env: { ...onRootless(), DOCKER_HOST: rig.dockerHost },
      });
      expect(rootful.code).toBe(0);
      // The contrast that keeps the test meaningful: the step does reach the host there.
      expect(readFileSync(join(dir, 'loot-rootful', 'loot.txt'), 'utf8')).toContain(marker);
      expect(rootful.stderr.split(WARNING).length - 1).toBe(1);
      expect(rootful.stderr).toContain(
        "runs rootful: a RUN step granted network.host shares the host's network, its 127.0.0.1 services included",
      );
      expect(rootful.stderr).toContain('`ktl builder start` starts a rootless engine');

      const rl = ktl(args(join(dir, 'loot-rootless')), { env: onRootless() });
      expect(rl.code).toBe(0);
      const loot = readFileSync(join(dir, 'loot-rootless', 'loot.txt'), 'utf8');
      expect(loot).not.toContain(marker);
      expect(loot).toMatch(/unreachable\n$/);
      expect(rl.stderr).not.toContain(WARNING);
    },
    120_000,
  );

  bothTest(
    'builder ls --json reports the rig engine rootful and the rootless engine rootless',
    () => {
      const r = ktl(['builder', 'ls', '--json'], {
        env: { ...onRootless(), DOCKER_HOST: rig.dockerHost },
      });
      expect(r.code).toBe(0);
      const j = JSON.parse(r.stdout) as {
        candidates: Record<string, unknown>[];
        selected: Record<string, unknown>;
      };
      const bySource = (s: string) => j.candidates.find((c) => String(c.source).startsWith(s));
      expect(bySource('DOCKER_HOST')).toMatchObject({
        address: `docker://${rig.dockerHost}`,
        status: 'selected',
        rootless: false,
        entitlements: ['network.host'],
        entitlementsRefused: ['security.insecure'],
      });
      expect(bySource('ktl builder')).toMatchObject({
        source: 'ktl builder (dockerd, rootless, ktl builder start)',
        address: `docker://unix://${socket}`,
        status: 'answers',
        rootless: true,
        rootlessBasis: "the engine's security options (name=rootless)",
        entitlements: ['network.host'],
        entitlementsRefused: ['security.insecure'],
      });
      expect(j.selected).toMatchObject({ rootless: false });
      const text = ktl(['builder', 'ls'], {
        env: { ...onRootless(), DOCKER_HOST: rig.dockerHost },
      });
      expect(text.stdout).toMatch(/^\*\s+DOCKER_HOST\s+\S+\s+rootful\s+network\.host\s+selected$/m);
      expect(text.stdout).toMatch(
        /^\s+ktl builder \(dockerd, rootless, ktl builder start\)\s+\S+\s+rootless\s+network\.host\s+answers$/m,
      );
      expect(text.stdout).toMatch(
        /^risk: a RUN step granted network\.host shares the host's network/m,
      );
    },
  );

  bothTest(
    'sandbox doctor reports the builder ktl build would use: rootless ok, rootful WARN',
    () => {
      const rl = ktl(['sandbox', 'doctor'], { env: onRootless() });
      expect(rl.stdout).toContain(
        `ok   builder: docker://unix://${socket}: rootless, grants network.host (the engine's security options (name=rootless))`,
      );
      const rf = ktl(['sandbox', 'doctor', '--json'], {
        env: { ...onRootless(), DOCKER_HOST: rig.dockerHost },
      });
      expect(JSON.parse(rf.stdout).builder).toMatchObject({
        found: true,
        address: `docker://${rig.dockerHost}`,
        rootless: false,
        entitlements: ['network.host'],
      });
    },
  );
});

rlTest(
  `the rootless engine runs as ktl-builder; rootlesskit and slirp4netns with host loopback disabled${rlWhy}`,
  () => {
    const st = JSON.parse(ktl(['builder', 'status', '--json'], { env: onRootless() }).stdout);
    expect(st).toMatchObject({ running: true, rootless: true, user: { name: 'ktl-builder' } });
    const ps = spawnSync('ps', ['-e', '-o', 'pid=,ppid=,uid=,comm=,args='], { encoding: 'utf8' })
      .stdout.split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter((f) => f.length >= 5)
      .map(([pid, ppid, uid, comm, ...args]) => ({
        pid,
        ppid,
        uid: Number(uid),
        comm,
        args: args.join(' '),
      }));
    const top = ps.find((p) => p.pid === String(st.pid))!;
    expect(top.comm).toBe('rootlesskit');
    expect(top.uid).toBe(st.user.uid);
    expect(top.args).toContain('--disable-host-loopback');
    const slirp = ps.find((p) => p.ppid === String(st.pid) && p.comm === 'slirp4netns')!;
    expect(slirp.uid).toBe(st.user.uid);
    expect(slirp.args).toContain('--disable-host-loopback');
  },
);
