/**
 * `ktl build` end to end: the built ./bin/ktl against each engine (the rig's Docker 26.1 and
 * the Docker 20.10 compatibility engine, see buildkit-client/test/engines.ts) and the rig's
 * registry. The cases that carry paths, env and credentials across run on the host
 * (KTL_SANDBOX_DISABLE=1) and in the sandbox, where each of those has to be handed over
 * explicitly (binds, env; registry credentials are answered from outside); on the compatibility engine in the sandbox only. A case an engine cannot do is registered as skipped
 * there, with the engine's limit in its name; so is everything when an engine is down.
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
import {
  type Feature,
  gate,
  type TestEngine,
  testEngines,
} from '../../buildkit-client/test/engines';
import { type KtlResult, ktl, ktlBin } from './helpers';

const engines = await testEngines();
const dir = mkdtempSync(join(tmpdir(), 'ktl-build-'));
const docker = (e: TestEngine, ...args: string[]) =>
  spawnSync(e.dockerCli, ['-H', e.dockerHost, ...args], { encoding: 'utf8' });
/** Images the builds stored in an engine, removed at the end. */
const made: Array<[TestEngine, string]> = [];
afterAll(() => {
  for (const e of engines) {
    const mine = made.filter(([x]) => x === e).map(([, n]) => n);
    if (mine.length > 0) docker(e, 'image', 'rm', '-f', ...mine);
  }
  rmSync(dir, { recursive: true, force: true });
});

// An empty DOCKER_CONFIG dir: no credentials from the machine running the tests.
const noAuth = join(dir, 'docker-config');
mkdirSync(noAuth);
const envFor = (e: TestEngine) => ({
  DOCKER_HOST: e.dockerHost,
  KTL_SANDBOX_DISABLE: '1',
  BUILDKIT_HOST: '',
  DOCKER_CONFIG: noAuth,
});
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
function ktlAsync(
  e: TestEngine,
  args: string[],
  extraEnv: Record<string, string>,
): Promise<KtlResult> {
  return new Promise((resolve) => {
    const c = spawn(ktlBin, args, { env: { ...process.env, ...envFor(e), ...extraEnv } });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    c.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const runOn =
  (e: TestEngine) =>
  (args: string[], extra: Record<string, string> = {}, input?: string) =>
    ktl(['build', ...args], {
      env: { ...envFor(e), ...extra },
      ...(input === undefined ? {} : { input }),
    });

const bwrap = spawnSync('sh', ['-c', 'command -v bwrap'], { encoding: 'utf8' }).stdout.trim();
const modes: Array<[string, Record<string, string>, string]> = [
  ['on the host', { KTL_SANDBOX_DISABLE: '1' }, ''],
  [
    'in the sandbox',
    { KTL_SANDBOX_DISABLE: '', KTL_SANDBOX_CONFIG: '' },
    bwrap ? '' : ' [skipped: bwrap is not installed]',
  ],
];
const BANNER = /^Running ktl build inside the sandbox \(/m;
const expectMode = (mode: string, stderr: string) => {
  if (mode === 'in the sandbox') expect(stderr).toMatch(BANNER);
  else expect(stderr).not.toMatch(BANNER);
};

// On the compatibility engine only in the sandbox (the default, and the path through the
// gateway); its host path shares everything engine-facing with it and runs the cases below.
describe.each(
  engines.flatMap((e) =>
    modes
      .filter(([m]) => e.id === 'rig' || m === 'in the sandbox')
      .map(([m, env, noMode]) => [e.label, m, e, env, noMode] as const),
  ),
)('ktl build on %s %s', (_l, mode, engine, modeEnv, noMode) => {
  const run = runOn(engine);
  const base = engine.baseImage;
  const registry = engine.registry;
  /** The engine's gate, then the sandbox runtime's. */
  const gated = (...needs: Feature[]) => {
    const g = gate(engine, ...needs);
    return g.why === '' && noMode !== '' ? { test: test.skip, why: noMode } : g;
  };
  const any = gated();

  any.test(
    `every build option reaches the build; -f outside the context; metadata${any.why}`,
    () => {
      const ctx = context(`opts-${uniq()}`, { 'in-context.txt': 'ctx file\n' });
      const df = join(dir, `elsewhere-${uniq()}`, 'Build.dockerfile');
      mkdirSync(join(df, '..'), { recursive: true });
      writeFileSync(
        df,
        [
          `FROM ${base} AS unused`,
          'RUN exit 1',
          `FROM ${base} AS main`,
          'ARG FLAVOR',
          'COPY in-context.txt /out/',
          'RUN --mount=type=secret,id=tok cp /run/secrets/tok /out/tok',
          'RUN echo "$FLAVOR" > /out/flavor && grep myhost /etc/hosts > /out/hosts',
          'RUN (wget -T 2 -q -O- http://127.0.0.1:5000/v2/ >/dev/null 2>&1 && echo net || echo no-net) > /out/net',
          '',
        ].join('\n'),
      );
      const out = join(dir, `opts-out-${uniq()}`);
      const meta = join(dir, `meta-${uniq()}.json`);
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
          '--metadata-file',
          meta,
        ],
        { ...modeEnv, KTL_TEST_TOKEN: 't0ken' },
      );
      expectMode(mode, r.stderr);
      expect(r.stderr).toMatch(/#0 building with (docker|unix):\/\//);
      expect(r.code).toBe(0);
      const f = (n: string) => readFileSync(join(out, 'out', n), 'utf8');
      expect(f('in-context.txt')).toBe('ctx file\n');
      expect(f('tok')).toBe('t0ken');
      expect(f('flavor')).toBe('spicy\n');
      expect(f('hosts')).toMatch(/^10\.9\.8\.7\s+myhost$/m);
      expect(f('net')).toBe('no-net\n');
      expect(existsSync(meta)).toBe(true);
    },
    120_000,
  );

  const named = gated('named-contexts');
  named.test(
    `--build-context NAME=DIR and NAME=docker-image://REF reach COPY --from${named.why}`,
    () => {
      const ctx = context(`named-${uniq()}`, {
        Dockerfile: [
          `FROM ${base}`,
          'COPY --from=extra e.txt /out/',
          'COPY --from=img /bin/busybox /out/busybox-from-image',
          '',
        ].join('\n'),
      });
      const extra = context(`extra-${uniq()}`, { 'e.txt': 'from a named context\n' });
      const out = join(dir, `named-out-${uniq()}`);
      const r = run(
        [
          ctx,
          '--build-context',
          `extra=${extra}`,
          '--build-context',
          `img=docker-image://${base}`,
          '-o',
          `type=local,dest=${out}`,
        ],
        modeEnv,
      );
      expectMode(mode, r.stderr);
      expect(r.code).toBe(0);
      expect(readFileSync(join(out, 'out', 'e.txt'), 'utf8')).toBe('from a named context\n');
      expect(existsSync(join(out, 'out', 'busybox-from-image'))).toBe(true);
    },
    120_000,
  );

  any.test(
    `--push to the registry, then a --pull build FROM what was pushed; -q prints the id${any.why}`,
    () => {
      const ref = `${registry}/ktltest/pushed:${uniq()}`;
      made.push([engine, ref]);
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

      // Not from the engine's store: removed there, --pull must fetch it from the registry.
      docker(engine, 'image', 'rm', '-f', ref);
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

  any.test(
    `registry credentials come from DOCKER_CONFIG (the session's Auth, or the engine's push)${any.why}`,
    async () => {
      // A registry front that wants Basic auth: 401 + challenge, then proxies to the rig's.
      const [rh, rp] = registry.split(':');
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
        made.push([engine, ref]);
        const ctx = context(`auth-${uniq()}`, {
          Dockerfile: `FROM ${base}\nRUN echo authed > /x\n`,
        });
        const denied = await ktlAsync(engine, ['build', ctx, '-t', ref, '--push'], modeEnv);
        expect(denied.code).toBe(4);
        expect(denied.stderr).toMatch(
          /401 Unauthorized|unauthorized|authorization|no basic auth credentials/i,
        );

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
        const ok = await ktlAsync(engine, ['build', ctx, '-t', ref, '--push'], {
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

describe.each(engines.map((e) => [e.label, e] as const))('ktl build on %s', (_l, engine) => {
  const run = runOn(engine);
  const base = engine.baseImage;
  const any = gate(engine);

  any.test(
    `--load stores the image in the engine, and a second build is all CACHED${any.why}`,
    () => {
      const name = `ktltest/loaded:${uniq()}`;
      made.push([engine, name]);
      const ctx = context(`load-${uniq()}`, {
        Dockerfile: `FROM ${base} AS a\nRUN echo one > /one\nFROM a\nCOPY f /f\nRUN cat /f /one > /both\n`,
        f: 'f\n',
      });
      const r1 = run([ctx, '-t', name, '--load', '--progress', 'plain']);
      expect(r1.code).toBe(0);
      const ls = docker(
        engine,
        'image',
        'ls',
        '--format',
        '{{.Repository}}:{{.Tag}}',
        'ktltest/loaded',
      );
      expect(ls.stdout.split('\n')).toContain(name);

      const iid = join(dir, `iid2-${uniq()}`);
      const r2 = run([ctx, '-t', name, '--load', '--progress', 'plain', '--iidfile', iid]);
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
      const id = docker(engine, 'image', 'inspect', '--format', '{{.Id}}', name).stdout.trim();
      expect(readFileSync(iid, 'utf8')).toBe(id);
    },
    120_000,
  );

  const failing = `FROM ${base}\nRUN echo fine\nRUN echo about to fail && \\\n  echo oops >&2 && exit 3\n`;
  any.test(
    `a failing step: exit 4, the step, its last logs, the exit code; also with -q${any.why}`,
    () => {
      const ctx = context(`fail-${uniq()}`, { Dockerfile: failing });
      const r = run([ctx, '--no-cache']);
      expect(r.code).toBe(4);
      // BuildKit's own words differ by version; the exit code ends them.
      expect(r.stderr).toMatch(
        /^#\d+ ERROR: .*echo about to fail && {3}echo oops .*exit code: 3$/m,
      );
      expect(r.stderr).toMatch(/^ > \[3\/3\] RUN echo about to fail/m);
      expect(r.stderr).toMatch(/^\d+\.\d{3} oops$/m);
      expect(r.stderr).toMatch(
        /^ktl: build failed at step \[3\/3\] RUN echo about to fail .*, exit code 3$/m,
      );
      // Quiet mode still reports the failure in full.
      const q = run([ctx, '--no-cache', '-q']);
      expect(q.code).toBe(4);
      expect(q.stdout).toBe('');
      expect(q.stderr).toContain(' > [3/3] RUN echo about to fail');
    },
    120_000,
  );

  const src = gate(engine, 'source-locations');
  src.test(
    `a failing step and a Dockerfile error show the Dockerfile excerpt, like buildx${src.why}`,
    () => {
      const ctx = context(`excerpt-${uniq()}`, { Dockerfile: failing });
      const r = run([ctx, '--no-cache']);
      expect(r.code).toBe(4);
      expect(r.stderr).toContain('Dockerfile:3\n');
      expect(r.stderr).toContain('   3 | >>> RUN echo about to fail && \\\n');
      expect(r.stderr).toContain('   4 | >>>   echo oops >&2 && exit 3\n');
      expect(r.stderr).toMatch(
        /^ktl: build failed at step \[3\/3\] RUN echo about to fail .* \(Dockerfile:3\), exit code 3$/m,
      );
      const syntax = run([ctx, '-f', '-'], {}, `FROM ${base}\nRUNN echo\n`);
      expect(syntax.code).toBe(4);
      expect(syntax.stderr).toContain('   2 | >>> RUNN echo');
    },
    120_000,
  );

  any.test(
    `a secret the Dockerfile requires but the command line lacks: exit 4, the id, how to pass it${any.why}`,
    () => {
      const ctx = context(`nosecret-${uniq()}`, {
        Dockerfile: `FROM ${base}\nRUN --mount=type=secret,id=npmrc,required=true cat /run/secrets/npmrc\n`,
      });
      const r = run([ctx, '--no-cache']);
      expect(r.code).toBe(4);
      expect(r.stderr).toMatch(/secret npmrc:? not found/);
      expect(r.stderr).toContain(
        'hint: the Dockerfile needs secret "npmrc": pass it with --secret id=npmrc,src=FILE or --secret id=npmrc,env=VAR',
      );
    },
    120_000,
  );

  const arch = gate(engine, 'image-archives', 'several-outputs');
  arch.test(
    `tar, oci and docker archives of one build${arch.why}`,
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
    },
    120_000,
  );
});

// Paths of ktl's own that do not depend on the engine (the Dockerfile from stdin, the tar
// export's writer, no output): once, on the rig.
describe('ktl build on the rig, engine-independent paths', () => {
  const engine = engines[0]!;
  const run = runOn(engine);
  const base = engine.baseImage;
  const any = gate(engine);

  any.test(
    `-f - reads the Dockerfile from stdin; a Dockerfile error is exit 4 with the frontend's words${any.why}`,
    () => {
      const ctx = context(`syntax-${uniq()}`, { 'x.txt': 'x' });
      const r = run([ctx, '-f', '-'], {}, `FROM ${base}\nRUNN echo\n`);
      expect(r.code).toBe(4);
      expect(r.stderr).toContain('unknown instruction: RUNN');
      const out = join(dir, `stdin-out-${uniq()}`);
      const ok = run([ctx, '-f', '-', '-o', out], {}, 'FROM scratch\nCOPY x.txt /\n');
      expect(ok.code).toBe(0);
      expect(readFileSync(join(out, 'x.txt'), 'utf8')).toBe('x');
    },
    120_000,
  );

  any.test(
    `a tar archive of the files; type=cacheonly; no output warns${any.why}`,
    () => {
      const ctx = context(`tar-${uniq()}`, {
        Dockerfile: 'FROM scratch\nCOPY a /a\n',
        a: 'tarred',
      });
      const tar = join(dir, `a-${uniq()}.tar`);
      const r = run([ctx, '-o', `type=tar,dest=${tar}`]);
      expect(r.code).toBe(0);
      const list = spawnSync('tar', ['-tvf', tar], { encoding: 'utf8' }).stdout;
      expect(list).toMatch(/ 6 .* a$/m);
      expect(spawnSync('tar', ['-xOf', tar, 'a'], { encoding: 'utf8' }).stdout).toBe('tarred');
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
  const run = runOn(engines[0]!);
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
    expect(r.stderr).toContain('hint: `ktl builder start` starts a ktl-managed engine');
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
