import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { Parser } from '@oclif/core';
import { BUILD_FLAG_TABLE, commandLineKey, readBuildArgv } from '../src/build/argv';
import Build from '../src/commands/build';
import { ktl, repoRoot } from './helpers';

const built = existsSync(join(repoRoot, 'packages', 'cli', 'dist', 'build.cjs'));
const distTest = built ? test : test.skip;
const distWhy = built ? '' : ' (skipped: packages/cli/dist is not built; run pnpm build)';

// `ktl build`'s argv is read without oclif (src/build/argv.ts): the sandbox's jail starts from
// that reading, and the build runs from it without loading oclif at all (src/build-main.ts).
// These tests hold the reader to oclif: whenever it answers, it answers what oclif answers.

async function oclifKey(argv: string[]): Promise<string | undefined> {
  try {
    const { args, flags } = await Parser.parse(argv, {
      args: Build.args,
      flags: Build.flags,
      strict: true,
    });
    return commandLineKey(args, flags);
  } catch {
    return undefined; // oclif refuses it (the CLI reports that, exit 2)
  }
}

describe('the early argv reader', () => {
  test('its flag table is Build.flags: names, kinds, short names, repeatability, defaults, options', () => {
    const oclif = Build.flags as unknown as Record<
      string,
      {
        type: string;
        char?: string;
        multiple?: boolean;
        default?: unknown;
        options?: readonly string[];
      }
    >;
    expect(Object.keys(BUILD_FLAG_TABLE).sort()).toEqual(Object.keys(oclif).sort());
    for (const [name, spec] of Object.entries(BUILD_FLAG_TABLE)) {
      const f = oclif[name]!;
      expect([name, f.type === 'boolean' ? 'boolean' : 'string']).toEqual([name, spec.type]);
      expect([name, f.char]).toEqual([name, spec.char]);
      expect([name, f.multiple === true]).toEqual([name, spec.multiple === true]);
      expect([name, f.default]).toEqual([name, spec.default]);
      expect([name, f.options]).toEqual([name, spec.options]);
    }
  });

  // Command lines the early start must take (the fast path is for them).
  const accepted: string[][] = [
    ['.'],
    ['testdata/build/hello', '-o', 'type=local,dest=out'],
    ['.', '-t', 'app:1', '-t', 'app:latest', '--load'],
    ['-f', 'docker/Dockerfile', '.', '--target', 'prod', '--push', '-t', 'r/app:1'],
    ['.', '--file=Dockerfile.dev', '--build-arg', 'A=1', '--build-arg=B', '--no-cache'],
    ['.', '--platform', 'linux/amd64,linux/arm64', '--platform', 'linux/riscv64'],
    ['.', '--secret', 'id=npmrc,src=/tmp/x', '--ssh', 'default', '--allow', 'network.host'],
    ['.', '--progress', 'plain', '-q', '--iidfile', 'iid', '--metadata-file', 'm.json'],
    [
      '.',
      '--sandbox',
      '--sandbox-runtime',
      'bwrap',
      '--sandbox-logs',
      '--sandbox-bind',
      '/a:/b:ro',
    ],
    ['.', '--hermetic', '--network', 'none', '--add-host', 'h:1.2.3.4'],
    ['.', '--cache-from', 'type=local,src=c', '--cache-to', 'type=local,dest=c,mode=max'],
    ['.', '--attest', 'type=provenance,mode=max', '--provenance', 'false', '--sbom', 'false'],
    ['.', '--build-context', 'assets=../assets', '--label', 'a=b', '--pull'],
    ['.', '-f', '-'],
    ['.', '--sandbox-config', 'testdata/sandbox/linux-strict.cfg', '--builder', 'unix:///x'],
  ];
  test.each(accepted.map((a) => [a.join(' '), a] as const))(
    'takes `ktl build %s` and reads it as oclif does',
    async (_s, argv) => {
      const early = readBuildArgv(argv);
      expect(early).toBeDefined();
      expect(commandLineKey(early!.args, early!.flags)).toBe(await oclifKey(argv));
    },
  );

  // Forms the reader leaves to oclif: it must decline them, never guess.
  const declined: string[][] = [
    [],
    ['--help'],
    ['.', '-h'],
    ['.', '--', 'x'],
    ['.', 'second'],
    ['.', '--target', 'a', '--target', 'b'],
    ['.', '--pull', '--pull'],
    ['.', '--no-cache=true'],
    ['.', '-fDockerfile'],
    ['.', '-f=Dockerfile'],
    ['.', '--progress'],
    ['.', '--target', '--pull'],
    ['.', '--sandbox-runtime', 'docker'],
    ['.', '--bogus'],
    ['.', '--constructor', 'x'],
    ['.', '--__proto__', 'x'],
    ['-'],
    ['.', '--tag='],
    ['', '-t', 'x'],
  ];
  test.each(declined.map((a) => [a.join(' ') || '(nothing)', a] as const))(
    'declines `ktl build %s`',
    (_s, argv) => {
      expect(readBuildArgv(argv)).toBeUndefined();
    },
  );

  // Generated command lines: whatever the reader takes, oclif reads the same way.
  test('agrees with oclif on every command line it takes (generated)', async () => {
    const names = Object.keys(BUILD_FLAG_TABLE);
    const words = ['.', 'ctx', '-', '--', '-x', 'a=b', 'type=local,dest=o', 'bwrap', 'auto', ''];
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    let taken = 0;
    for (let i = 0; i < 600; i++) {
      const argv: string[] = [];
      const len = rand(7);
      for (let j = 0; j < len; j++) {
        const name = names[rand(names.length)]!;
        const spec = BUILD_FLAG_TABLE[name]!;
        const form = rand(4);
        if (form === 0 && spec.char) argv.push(`-${spec.char}`);
        else if (form === 1) argv.push(`--${name}=${words[rand(words.length)]}`);
        else argv.push(`--${name}`);
        if (spec.type === 'string' && form !== 1) argv.push(words[rand(words.length)]!);
        if (rand(5) === 0) argv.push(words[rand(words.length)]!);
      }
      const early = readBuildArgv(argv);
      if (early === undefined) continue;
      taken++;
      expect([argv, commandLineKey(early.args, early.flags)]).toEqual([argv, await oclifKey(argv)]);
    }
    // The generator must exercise the reader, not only its refusals.
    expect(taken).toBeGreaterThan(20);
  });
});

describe('the built CLI', () => {
  // KTL_TIMING names the bundle that ran the command: the fast path's (`build bundle loaded`)
  // or oclif's CLI (`bundle loaded`). Both report a missing context the same way, exit 2.
  const run = (argv: string[]) => {
    const r = ktl(['build', ...argv], { env: { KTL_TIMING: '1', KTL_SANDBOX_DISABLE: '1' } });
    const path = r.stderr.includes('outer: build bundle loaded')
      ? 'fast'
      : r.stderr.includes('outer: bundle loaded')
        ? 'oclif'
        : 'neither';
    const errors = r.stderr.split('\n').filter((l) => /^(ERROR|hint):/.test(l));
    return { code: r.code, path, errors };
  };

  distTest(
    `builds without oclif when the reader takes the command line, with oclif otherwise${distWhy}`,
    () => {
      const missing = join(repoRoot, 'testdata', 'build', 'no-such-context');
      const fast = run([missing, '-f', 'Dockerfile']);
      const oclif = run([missing, '-fDockerfile']); // a form the reader leaves to oclif
      expect(fast.path).toBe('fast');
      expect(oclif.path).toBe('oclif');
      expect(fast.code).toBe(2);
      expect(fast.errors.join('\n')).toMatch(/no-such-context/);
      expect({ code: oclif.code, errors: oclif.errors }).toEqual({ code: 2, errors: fast.errors });
    },
  );

  distTest(
    `--help and oclif's own parse errors go to oclif, reported as ktl's usage errors${distWhy}`,
    () => {
      const help = ktl(['build', '--help']);
      expect(help.code).toBe(0);
      expect(help.stdout).toContain('--sandbox-config');
      const bad = run(['.', '--bogus']);
      expect(bad).toEqual({
        code: 2,
        path: 'oclif',
        errors: ['ERROR: Nonexistent flag: --bogus', 'hint: see ktl build --help'],
      });
      // The other commands' too (the bundle is minified: not recognised by class name).
      // (NODE_ENV as a user has it: under jest's `test`, oclif adds a developer's warning.)
      const ls = ktl(['builder', 'ls', '--bogus'], { env: { NODE_ENV: '' } });
      expect([ls.code, ls.stderr]).toEqual([
        2,
        'ERROR: Nonexistent flag: --bogus\nhint: see ktl builder ls --help\n',
      ]);
    },
  );
});
