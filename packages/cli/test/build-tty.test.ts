/**
 * `ktl build --progress tty|auto` on a real pseudo-terminal: ./bin/ktl runs under util-linux
 * `script` against each engine (buildkit-client/test/engines.ts; on the host,
 * KTL_SANDBOX_DISABLE=1); the bytes the
 * terminal got are played into the model terminal of the buildkit-client tests, which throws
 * on any escape sequence or control character the renderer must not emit, and the final
 * screen is compared with the expected text (timings and digests replaced). Registered as
 * skipped, with the reason, when the rig or `script` is missing.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { gate, type TestEngine, testEngines } from '../../buildkit-client/test/engines';
import { Screen, stripTimings } from '../../buildkit-client/test/screen';
import { ktl, ktlBin, repoRoot } from './helpers';

const engines = await testEngines();
const base = engines[0]!.baseImage;
const scriptBin = '/usr/bin/script';
const noScript = existsSync(scriptBin)
  ? ''
  : ` [skipped: ${scriptBin} (util-linux script) is not installed]`;

const dir = mkdtempSync(join(tmpdir(), 'ktl-tty-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const noAuth = join(dir, 'docker-config');
mkdirSync(noAuth);
const COLS = 72;
const ROWS = 30;
const env = {
  KTL_SANDBOX_DISABLE: '1',
  BUILDKIT_HOST: '',
  DOCKER_CONFIG: noAuth,
  TERM: 'xterm',
  NO_COLOR: '',
  COLUMNS: String(COLS),
  LINES: String(ROWS),
};

function context(name: string, dockerfile: string): string {
  const d = mkdtempSync(join(dir, `${name}-`));
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'Dockerfile'), dockerfile);
  return d;
}

/** ./bin/ktl build ARGS with a pseudo-terminal for stdin, stdout and stderr. */
function ktlOnPty(e: TestEngine, args: string[], extra: Record<string, string> = {}) {
  const cmd = [ktlBin, 'build', ...args].map((a) => `'${a}'`).join(' ');
  const r = spawnSync(scriptBin, ['-qfec', cmd, '/dev/null'], {
    cwd: repoRoot,
    env: { ...process.env, ...env, DOCKER_HOST: e.dockerHost, ...extra },
    encoding: 'utf8',
    input: '',
    timeout: 60_000,
  });
  return { code: r.status, out: r.stdout };
}

/** The terminal's text from the progress header on, timings and digests made stable. */
function finalScreen(out: string): string {
  const text = new Screen(COLS, ROWS).feed(out).text();
  return (
    stripTimings(text.slice(text.indexOf('[+] Building')))
      .replace(/sha256:[0-9a-f]+/g, 'sha256:…')
      .replace(/^\d+\.\d{3} /gm, 'T ')
      // Whether the base image's FROM shows as CACHED depends on what the engine did before
      // (a fresh engine resolves it); the display of either is what is tested, not the cache.
      .replace(/^ => (CACHED )?(\[1\/2\] FROM )/m, ' => $2')
  );
}

/**
 * The screen with the base image's FROM vertex shown once, as this build names it. BuildKit
 * merges equal vertices of builds running at the same time, so another build of the same base
 * on the engine (another test file's, in parallel) can add its own FROM vertex, under its own
 * name (`[stage-0 1/2]`) and as CACHED, and one more step to the count; what is tested is this
 * build's display, not the engine's sharing.
 */
function ownFromOnly(screen: string): string {
  const lines = screen
    .split('\n')
    .map((l) => l.replace(/^ => (CACHED )?\[stage-\d+ (\d+\/\d+)\] FROM /, ' => [$2] FROM '));
  const out: string[] = [];
  let extra = 0;
  let seenFrom = false;
  for (let i = 0; i < lines.length; i++) {
    if (/^ => \[\d+\/\d+\] FROM /.test(lines[i]!)) {
      if (seenFrom) {
        extra++;
        if (/^ => => resolve /.test(lines[i + 1] ?? '')) i++;
        continue;
      }
      seenFrom = true;
    }
    out.push(lines[i]!);
  }
  if (extra > 0)
    out[0] = out[0]!.replace(
      /\((\d+)\/(\d+)\)/,
      (_, x, y) => `(${Number(x) - extra}/${Number(y) - extra})`,
    );
  return out.join('\n');
}

// A RUN step that writes escape sequences: clear screen, home, cursor up, a window title.
const hostile = String.raw`printf '\033[2J\033[Hhostile\033[5A\033]0;pwned\007 line\n'`;
const dockerfile = (tag: string, tail: string) =>
  `FROM ${base}\nRUN echo start-${tag}; ${hostile}; sleep 1; ${tail}\n`;

const header = [
  ' => [internal] load build definition from Dockerfile N.Ns',
  ' => => transferring dockerfile: NNNB N.Ns',
];
const internals = [
  [
    ' => [internal] load metadata for 127.0.0.1:5000/ktl/busybox:latest N.Ns',
    ' => [internal] load .dockerignore N.Ns',
    ' => => transferring context: 2B N.Ns',
  ],
  [
    ' => [internal] load .dockerignore N.Ns',
    ' => => transferring context: 2B N.Ns',
    ' => [internal] load metadata for 127.0.0.1:5000/ktl/busybox:latest N.Ns',
  ],
];
/** BuildKit v0.8 (the compatibility engine) reports no `resolve` sub-step for the base image. */
const fromLines = (e: TestEngine) => [
  ' => [1/2] FROM 127.0.0.1:5000/ktl/busybox:latest@sha256:… N.Ns',
  ...(e.id === 'compat' ? [] : [' => => resolve 127.0.0.1:5000/ktl/busybox:latest@sha256:… N.Ns']),
];
/**
 * The expected text, in the order BuildKit happened to start loading metadata and
 * .dockerignore (either may come first).
 */
const expected = (e: TestEngine, screen: string, head: string, tail: string[]) => {
  const inner =
    internals[screen.indexOf('load metadata') < screen.indexOf('load .dockerignore') ? 0 : 1] ?? [];
  const from = fromLines(e);
  // Steps are listed by when they started. The FROM step is shared with any other build of
  // the same base running on the engine (BuildKit merges equal vertices), so it may carry that
  // build's earlier start and come first.
  const fromFirst = screen.indexOf('[1/2] FROM') < screen.indexOf('load build definition');
  return [
    head,
    ...(fromFirst ? [...from, ...header, ...inner] : [...header, ...inner, ...from]),
    ...tail,
  ].join('\n');
};

describe.each(engines.map((e) => [e.label, e] as const))(
  'ktl build on a terminal, on %s',
  (_l, engine) => {
    const g = gate(engine);
    const rigTest = noScript ? test.skip : g.test;
    const why = g.why || noScript;
    rigTest(
      `--progress tty: redrawn in place; the final frame stays; hostile log escapes never reach the terminal${why}`,
      () => {
        const tag = 'ok';
        const ctx = context('ok', dockerfile(tag, 'echo finished'));
        const r = ktlOnPty(engine, [
          ctx,
          '--no-cache',
          '--progress',
          'tty',
          '-o',
          'type=cacheonly',
        ]);
        expect(r.code).toBe(0);
        const screen = ownFromOnly(
          finalScreen(
            r.out.replace(/transferring dockerfile: \d+B/g, 'transferring dockerfile: NNNB'),
          ),
        );
        expect(screen).toBe(
          expected(engine, screen, '[+] Building N.Ns (5/5) FINISHED', [
            String.raw` => [2/2] RUN echo start-ok; printf '\033[2J\033[Hhostile\033[5A\0 N.Ns`,
          ]),
        );
        // It was redrawn in place (cursor up), and the running step showed its output, cleaned.
        expect(r.out).toMatch(/\x1b\[\d+A/);
        expect(r.out).toContain(' => => # hostile line');
        expect(r.out).toContain(` => => # start-${tag}`);
        expect(r.out).not.toMatch(/\x1b\[2J|\x1b\[H|\x1b\]0;|\x07/);
        expect(r.out).toMatch(/\x1b\[34m/); // colors, NO_COLOR being empty
        expect(r.out).not.toMatch(/^#\d+ /m); // not the plain format
      },
      90_000,
    );

    // The report ends with the Dockerfile excerpt, which needs the engine's source locations.
    const src = gate(engine, 'source-locations');
    (noScript ? test.skip : src.test)(
      `--progress tty with a failing RUN and NO_COLOR: ERROR frame, then the failure report${src.why || noScript}`,
      () => {
        const tag = 'fail';
        const ctx = context('fail', dockerfile(tag, 'echo boom >&2; exit 3'));
        const r = ktlOnPty(
          engine,
          [ctx, '--no-cache', '--progress', 'tty', '-o', 'type=cacheonly'],
          {
            NO_COLOR: '1',
          },
        );
        expect(r.code).toBe(4);
        expect(r.out).not.toMatch(/\x1b\[[0-9;]*m/);
        const screen = ownFromOnly(
          finalScreen(
            r.out.replace(/transferring dockerfile: \d+B/g, 'transferring dockerfile: NNNB'),
          ),
        );
        // The report is printed as plain prints it; the terminal wraps its long lines.
        expect(screen).toBe(
          expected(engine, screen, '[+] Building N.Ns (5/5) FINISHED', [
            String.raw` => ERROR [2/2] RUN echo start-fail; printf '\033[2J\033[Hhostile\ N.Ns`,
            '------',
            String.raw` > [2/2] RUN echo start-fail; printf '\033[2J\033[Hhostile\033[5A\033]0;`,
            String.raw`pwned\007 line\n'; sleep 1; echo boom >&2; exit 3:`,
            'T start-fail',
            'T hostile line',
            'T boom',
            '------',
            'Dockerfile:2',
            '--------------------',
            '   1 |     FROM 127.0.0.1:5000/ktl/busybox:latest',
            String.raw`   2 | >>> RUN echo start-fail; printf '\033[2J\033[Hhostile\033[5A\033]`,
            String.raw`0;pwned\007 line\n'; sleep 1; echo boom >&2; exit 3`,
            '   3 |',
            '--------------------',
            String.raw`ERROR: failed to solve: process "/bin/sh -c echo start-fail; printf '\\0`,
            String.raw`33[2J\\033[Hhostile\\033[5A\\033]0;pwned\\007 line\\n'; sleep 1; echo bo`,
            'om >&2; exit 3" did not complete successfully: exit code: 3',
            String.raw`ktl: build failed at step [2/2] RUN echo start-fail; printf '\033[2J\033`,
            String.raw`[Hhostile\033[5A\033]0;pwned\007 line\n'; sleep 1; echo boom >&2; exit 3`,
            ' (Dockerfile:2), exit code 3',
          ]),
        );
      },
      90_000,
    );

    rigTest(
      `--progress auto: tty on a pseudo-terminal, plain when stderr is a pipe${why}`,
      () => {
        const ctx = context('auto', `FROM ${base}\nRUN echo auto\n`);
        const onPty = ktlOnPty(engine, [ctx, '-o', 'type=cacheonly']);
        expect(onPty.code).toBe(0);
        expect(onPty.out).toMatch(/\[\+\] Building \d+\.\ds \(\d+\/\d+\) FINISHED/);
        expect(onPty.out).toMatch(/\x1b\[\d+A/);
        expect(onPty.out).not.toMatch(/^#\d+ /m);
        const piped = ktl(['build', ctx, '-o', 'type=cacheonly'], {
          env: { ...env, DOCKER_HOST: engine.dockerHost },
        });
        expect(piped.code).toBe(0);
        expect(piped.stderr).toMatch(/^#1 \[internal\] load build definition from Dockerfile$/m);
        expect(piped.stderr).not.toContain('\x1b');
        expect(piped.stderr).not.toContain('[+] Building');
      },
      90_000,
    );
  },
);
