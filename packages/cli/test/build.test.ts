/**
 * `ktl build` end to end: the built ./bin/ktl against the rig's engine and registry, on the
 * host (KTL_SANDBOX_DISABLE=1; build-sandbox.test.ts covers the jailed path). Registered as
 * skipped, with the reason, when the rig is not up.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { type KtlResult, ktl, ktlBin, readEnvFile } from './helpers';

const rigEnv = process.env.KTL_RIG_ENV_FILE ?? '/var/lib/ktl-rig/env';
const rig = readEnvFile(rigEnv);
const dockerHost = rig.KTL_RIG_DOCKER_HOST;
const base = rig.KTL_RIG_BASE_IMAGE;
const registry = rig.KTL_RIG_REGISTRY;
const ready =
  dockerHost !== undefined &&
  existsSync(dockerHost.replace('unix://', '')) &&
  base !== undefined &&
  registry !== undefined;
const rigTest = ready ? test : test.skip;
const why = ready
  ? ''
  : ` [skipped: the BuildKit rig is not up (${rigEnv}); run scripts/rig.sh up]`;

const dir = mkdtempSync(join(tmpdir(), 'ktl-build-'));
const docker = (...args: string[]) =>
  spawnSync(rig.KTL_RIG_DOCKER_CLI ?? 'docker', ['-H', dockerHost ?? '', ...args], {
    encoding: 'utf8',
  });
const made: string[] = [];
afterAll(() => {
  if (made.length > 0) docker('image', 'rm', '-f', ...made);
  rmSync(dir, { recursive: true, force: true });
});

// An empty DOCKER_CONFIG dir: no credentials from the machine running the tests.
const noAuth = join(dir, 'docker-config');
mkdirSync(noAuth);
const env = {
  DOCKER_HOST: dockerHost ?? '',
  KTL_SANDBOX_DISABLE: '1',
  BUILDKIT_HOST: '',
  DOCKER_CONFIG: noAuth,
};
const uniq = () => randomBytes(4).toString('hex');

function context(name: string, files: Record<string, string>): string {
  const d = join(dir, name);
  for (const [p, body] of Object.entries(files)) {
    mkdirSync(join(d, p, '..'), { recursive: true });
    writeFileSync(join(d, p), body);
  }
  return d;
}

/** ktl without blocking the event loop (a test serves HTTP meanwhile). */
function ktlAsync(args: string[], extraEnv: Record<string, string>): Promise<KtlResult> {
  return new Promise((resolve) => {
    const c = spawn(ktlBin, args, { env: { ...process.env, ...env, ...extraEnv } });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    c.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const run = (args: string[], extra: Record<string, string> = {}, input?: string) =>
  ktl(['build', ...args], { env: { ...env, ...extra }, ...(input === undefined ? {} : { input }) });

// The tests that carry paths, env and credentials across run twice: on the host and in the
// sandbox, where each of those has to be handed over explicitly (binds, env, a config.json).
const bwrap = spawnSync('sh', ['-c', 'command -v bwrap'], { encoding: 'utf8' }).stdout.trim();
const modes: [string, Record<string, string>, typeof test | typeof test.skip][] = [
  ['on the host', { KTL_SANDBOX_DISABLE: '1' }, rigTest],
  [
    'in the sandbox',
    { KTL_SANDBOX_DISABLE: '', KTL_SANDBOX_CONFIG: '' },
    bwrap ? rigTest : test.skip,
  ],
];
const modeWhy = (mode: string) =>
  why || (mode === 'in the sandbox' && !bwrap ? ' [skipped: bwrap is not installed]' : '');
const BANNER = /^Running ktl build inside the sandbox \(/m;
const expectMode = (mode: string, stderr: string) => {
  if (mode === 'in the sandbox') expect(stderr).toMatch(BANNER);
  else expect(stderr).not.toMatch(BANNER);
};

describe.each(modes)('ktl build %s', (mode, modeEnv, modeTest) => {
  modeTest(
    `every build option reaches the build; -f outside the context; iidfile and metadata${modeWhy(mode)}`,
    () => {
      const ctx = context(`opts-${uniq()}`, { 'in-context.txt': 'ctx file\n' });
      const extra = context(`extra-${uniq()}`, { 'e.txt': 'from a named context\n' });
      const df = join(dir, 'elsewhere', 'Build.dockerfile');
      mkdirSync(join(dir, 'elsewhere'), { recursive: true });
      writeFileSync(
        df,
        [
          `FROM ${base} AS unused`,
          'RUN exit 1',
          `FROM ${base} AS main`,
          'ARG FLAVOR',
          'COPY in-context.txt /out/',
          'COPY --from=extra e.txt /out/',
          'COPY --from=img /bin/busybox /out/busybox-from-image',
          'RUN --mount=type=secret,id=tok cp /run/secrets/tok /out/tok',
          'RUN echo "$FLAVOR" > /out/flavor && grep myhost /etc/hosts > /out/hosts',
          'RUN (wget -T 2 -q -O- http://127.0.0.1:5000/v2/ >/dev/null 2>&1 && echo net || echo no-net) > /out/net',
          '',
        ].join('\n'),
      );
      const out = join(dir, `opts-out-${uniq()}`);
      const r = run(
        [
          ctx,
          '-f',
          df,
          '--target',
          'main',
          '--build-arg',
          'FLAVOR=spicy',
          '--label',
          'org.example=1',
          '--build-context',
          `extra=${extra}`,
          '--build-context',
          `img=docker-image://${base}`,
          '--secret',
          'id=tok,env=KTL_TEST_TOKEN',
          '--add-host',
          'myhost:10.9.8.7',
          '--network',
          'none',
          '--platform',
          'linux/amd64',
          '-o',
          `type=local,dest=${out}`,
          '--iidfile',
          join(dir, 'iid'),
          '--metadata-file',
          join(dir, 'meta.json'),
        ],
        { ...modeEnv, KTL_TEST_TOKEN: 't0ken' },
      );
      expectMode(mode, r.stderr);
      expect(r.stderr).toMatch(/#0 building with (docker|unix):\/\//);
      expect(r.code).toBe(0);
      const f = (n: string) => readFileSync(join(out, 'out', n), 'utf8');
      expect(f('in-context.txt')).toBe('ctx file\n');
      expect(f('e.txt')).toBe('from a named context\n');
      expect(existsSync(join(out, 'out', 'busybox-from-image'))).toBe(true);
      expect(f('tok')).toBe('t0ken');
      expect(f('flavor')).toBe('spicy\n');
      expect(f('hosts')).toMatch(/^10\.9\.8\.7\s+myhost$/m);
      expect(f('net')).toBe('no-net\n');
      expect(existsSync(join(dir, 'meta.json'))).toBe(true);
    },
    120_000,
  );

  modeTest(
    `--push to the registry, then a --pull build FROM what was pushed; -q prints the id${modeWhy(mode)}`,
    () => {
      const ref = `${registry}/ktltest/pushed:${uniq()}`;
      const ctx = context(`push-${uniq()}`, {
        Dockerfile: `FROM ${base}\nRUN echo pushed-${ref} > /marker\n`,
      });
      const r = run([ctx, '-t', ref, '--push', '-q'], modeEnv);
      expectMode(mode, r.stderr);
      expect(r.stderr).not.toMatch(/^#\d/m); // quiet: no progress
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
      const tags = spawnSync(
        'wget',
        ['-q', '-O-', `http://${registry}/v2/ktltest/pushed/tags/list`],
        {
          encoding: 'utf8',
        },
      );
      expect(tags.stdout).toContain(ref.split(':').pop());

      const ctx2 = context(`pull-${uniq()}`, {
        Dockerfile: `FROM ${ref}\nRUN cat /marker > /seen\n`,
      });
      const out = join(dir, `pull-out-${uniq()}`);
      const r2 = run([ctx2, '--pull', '-o', out, '--progress', 'plain'], modeEnv);
      expect(r2.code).toBe(0);
      expect(readFileSync(join(out, 'seen'), 'utf8')).toBe(`pushed-${ref}\n`);
    },
    120_000,
  );

  modeTest(
    `registry credentials come from DOCKER_CONFIG (served as the session's Auth)${modeWhy(mode)}`,
    async () => {
      // A registry front that wants Basic auth: 401 + challenge, then proxies to the rig's.
      const [rh, rp] = registry!.split(':');
      const seen: string[] = [];
      const server = http.createServer((req, res) => {
        const auth = req.headers.authorization ?? '';
        seen.push(auth === '' ? 'anonymous' : auth);
        if (auth !== `Basic ${Buffer.from('ktl:s3cret').toString('base64')}`) {
          res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="ktl-test"' });
          res.end();
          return;
        }
        const up = http.request(
          { host: rh, port: Number(rp), method: req.method, path: req.url, headers: req.headers },
          (ur) => {
            res.writeHead(ur.statusCode ?? 502, ur.headers);
            ur.pipe(res);
          },
        );
        req.pipe(up);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as { port: number }).port;
      try {
        const ref = `127.0.0.1:${port}/ktltest/authed:${uniq()}`;
        const ctx = context(`auth-${uniq()}`, {
          Dockerfile: `FROM ${base}\nRUN echo authed > /x\n`,
        });
        const denied = await ktlAsync(['build', ctx, '-t', ref, '--push'], modeEnv);
        expect(denied.code).toBe(4);
        expect(denied.stderr).toMatch(/401 Unauthorized|unauthorized|authorization/i);

        const cfg = join(dir, `docker-config-${uniq()}`);
        mkdirSync(cfg);
        writeFileSync(
          join(cfg, 'config.json'),
          JSON.stringify({
            auths: {
              [`127.0.0.1:${port}`]: { auth: Buffer.from('ktl:s3cret').toString('base64') },
            },
          }),
        );
        const ok = await ktlAsync(['build', ctx, '-t', ref, '--push'], {
          ...modeEnv,
          DOCKER_CONFIG: cfg,
        });
        expectMode(mode, ok.stderr);
        expect(ok.stderr).not.toContain('ERROR');
        expect(ok.code).toBe(0);
        expect(seen).toContain(`Basic ${Buffer.from('ktl:s3cret').toString('base64')}`);
      } finally {
        server.closeAllConnections();
        await new Promise<void>((r) => server.close(() => r()));
      }
    },
    120_000,
  );
});

describe('ktl build on the rig', () => {
  rigTest(
    `--load stores the image in the engine, and a second build is all CACHED${why}`,
    () => {
      const name = `ktltest/loaded:${uniq()}`;
      made.push(name);
      const ctx = context(`load-${uniq()}`, {
        Dockerfile: `FROM ${base} AS a\nRUN echo one > /one\nFROM a\nCOPY f /f\nRUN cat /f /one > /both\n`,
        f: 'f\n',
      });
      const r1 = run([ctx, '-t', name, '--load', '--progress', 'plain']);
      expect(r1.code).toBe(0);
      const ls = docker('image', 'ls', '--format', '{{.Repository}}:{{.Tag}}', `ktltest/loaded`);
      expect(ls.stdout.split('\n')).toContain(name);

      const r2 = run([
        ctx,
        '-t',
        name,
        '--load',
        '--progress',
        'plain',
        '--iidfile',
        join(dir, 'iid2'),
      ]);
      expect(r2.code).toBe(0);
      const steps = [...r2.stderr.matchAll(/^#(\d+) (\[.+\] .+)$/gm)].filter(
        ([, , n]) => !n!.startsWith('[internal]'),
      );
      expect(steps.length).toBeGreaterThanOrEqual(4);
      for (const [, n, stepName] of steps) {
        if (/FROM/.test(stepName!)) continue; // FROM resolves, then is CACHED too
        expect(r2.stderr).toContain(`#${n} ${stepName}\n#${n} CACHED\n`);
      }
      expect(r2.stderr).not.toMatch(/^#\d+ \d+\.\d{3} /m); // nothing ran, nothing logged
      const id = docker('image', 'inspect', '--format', '{{.Id}}', name).stdout.trim();
      expect(readFileSync(join(dir, 'iid2'), 'utf8')).toBe(id);
    },
    120_000,
  );

  rigTest(
    `a failing step: exit 4, the step, its Dockerfile line, its last logs, the exit code${why}`,
    () => {
      const ctx = context(`fail-${uniq()}`, {
        Dockerfile: `FROM ${base}\nRUN echo fine\nRUN echo about to fail && \\\n  echo oops >&2 && exit 3\n`,
      });
      const r = run([ctx, '--no-cache']);
      expect(r.code).toBe(4);
      expect(r.stderr).toMatch(
        /^#\d+ ERROR: process "\/bin\/sh -c echo about to fail && {3}echo oops >&2 && exit 3" did not complete successfully: exit code: 3$/m,
      );
      expect(r.stderr).toMatch(/^ > \[3\/3\] RUN echo about to fail/m);
      expect(r.stderr).toMatch(/^\d+\.\d{3} oops$/m);
      expect(r.stderr).toContain('Dockerfile:3\n');
      expect(r.stderr).toContain('   3 | >>> RUN echo about to fail && \\\n');
      expect(r.stderr).toContain('   4 | >>>   echo oops >&2 && exit 3\n');
      expect(r.stderr).toMatch(
        /^ktl: build failed at step \[3\/3\] RUN echo about to fail .* \(Dockerfile:3\), exit code 3$/m,
      );
      // Quiet mode still reports the failure in full.
      const q = run([ctx, '--no-cache', '-q']);
      expect(q.code).toBe(4);
      expect(q.stdout).toBe('');
      expect(q.stderr).toContain(' > [3/3] RUN echo about to fail');
    },
    120_000,
  );

  rigTest(
    `a secret the Dockerfile requires but the command line lacks: exit 4, the id, how to pass it${why}`,
    () => {
      const ctx = context(`nosecret-${uniq()}`, {
        Dockerfile: `FROM ${base}\nRUN --mount=type=secret,id=npmrc,required=true cat /run/secrets/npmrc\n`,
      });
      const r = run([ctx, '--no-cache']);
      expect(r.code).toBe(4);
      expect(r.stderr).toContain('secret npmrc: not found');
      expect(r.stderr).toContain(
        'hint: the Dockerfile needs secret "npmrc": pass it with --secret id=npmrc,src=FILE or --secret id=npmrc,env=VAR',
      );
    },
    120_000,
  );

  rigTest(
    `a Dockerfile error names the line; -f - reads the Dockerfile from stdin${why}`,
    () => {
      const ctx = context(`syntax-${uniq()}`, { 'x.txt': 'x' });
      const r = run([ctx, '-f', '-'], {}, `FROM ${base}\nRUNN echo\n`);
      expect(r.code).toBe(4);
      expect(r.stderr).toContain('unknown instruction: RUNN');
      expect(r.stderr).toContain('   2 | >>> RUNN echo');
      const out = join(dir, `stdin-out-${uniq()}`);
      const ok = run([ctx, '-f', '-', '-o', out], {}, 'FROM scratch\nCOPY x.txt /\n');
      expect(ok.code).toBe(0);
      expect(readFileSync(join(out, 'x.txt'), 'utf8')).toBe('x');
    },
    120_000,
  );

  rigTest(
    `tar, oci and docker archives; type=cacheonly; no output warns${why}`,
    () => {
      const ctx = context(`arch-${uniq()}`, {
        Dockerfile: 'FROM scratch\nCOPY a /a\n',
        a: 'archived',
      });
      const r = run([
        ctx,
        '-t',
        'arch:1',
        '-o',
        `type=tar,dest=${join(dir, 'a.tar')}`,
        '-o',
        `type=oci,dest=${join(dir, 'a.oci.tar')}`,
        '-o',
        `type=docker,dest=${join(dir, 'a.docker.tar')}`,
      ]);
      expect(r.code).toBe(0);
      expect(readFileSync(join(dir, 'a.tar')).includes(Buffer.from('archived'))).toBe(true);
      const oci = spawnSync('tar', ['-tf', join(dir, 'a.oci.tar')], { encoding: 'utf8' }).stdout;
      expect(oci).toContain('oci-layout');
      const dk = spawnSync('tar', ['-xOf', join(dir, 'a.docker.tar'), 'manifest.json'], {
        encoding: 'utf8',
      }).stdout;
      expect(dk).toContain('"RepoTags":["arch:1"]');
      const c = run([ctx, '-o', 'type=cacheonly']);
      expect(c.code).toBe(0);
      expect(c.stderr).not.toContain('WARNING: no output');
      const n = run([ctx]);
      expect(n.code).toBe(0);
      expect(n.stderr).toContain('WARNING: no output given');
    },
    120_000,
  );
});

describe('ktl build refusals (exit 2 and 3), no builder needed', () => {
  const hello = context('refusals', { Dockerfile: 'FROM scratch\n' });
  test.each<[string, string[], RegExp]>([
    ['unknown flag', ['--frobnicate'], /Nonexistent flag: --frobnicate/],
    ['bad output', ['-o', 'type=s3'], /--output "type=s3": unknown type "s3"/],
    ['bad build-arg', ['--build-arg', '=x'], /--build-arg "=x": expected KEY=VALUE/],
    ['bad network', ['--network', 'bridge'], /--network "bridge": expected default, none or host/],
    ['bad tag', ['-t', 'Upper:1'], /--tag "Upper:1": repository name must be lowercase/],
    ['missing secret file', ['--secret', 'id=a,src=/nonexistent'], /\/nonexistent does not exist/],
  ])('%s', (_n, args, message) => {
    const r = run([hello, ...args]);
    expect(r.stderr).toMatch(message);
    expect(r.code).toBe(2);
  });

  test('a missing context is exit 2', () => {
    const r = run([join(dir, 'nope')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `CONTEXT "${join(dir, 'nope')}": ${join(dir, 'nope')} does not exist`,
    );
  });

  test('no builder answers: exit 3, every address tried, what to do', () => {
    const r = run([hello], { DOCKER_HOST: `unix://${dir}/no-docker.sock` });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('no BuildKit builder answered');
    expect(r.stderr).toContain(`DOCKER_HOST: docker://unix://${dir}/no-docker.sock`);
    expect(r.stderr).toContain('hint: `sudo ktl builder start` starts a ktl-managed engine');
    const b = run([hello, '--builder', `unix://${dir}/nothing.sock`]);
    expect(b.code).toBe(3);
    expect(b.stderr).toContain(
      `cannot reach builder at unix://${dir}/nothing.sock: no socket there`,
    );
  });

  test('a symlinked context directory is followed', () => {
    symlinkSync(hello, join(dir, 'hello-link'));
    const r = run([join(dir, 'hello-link'), '--builder', `unix://${dir}/nothing.sock`]);
    expect(r.code).toBe(3); // got past validation to the builder
  });
});
